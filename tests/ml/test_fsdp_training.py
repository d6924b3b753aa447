"""Two trainer processes under torchrun (gloo, CPU) full-fine-tune the tiny model with FSDP2.

What this proves (fsdp.py): full fine-tuning on two processes shards the model (each rank holds
about half of the parameters' bytes, measured from its own shards); it trains exactly like one
process with twice the accumulation (per-step losses equal), though the loop calls the decoder
and the head apart (the root's registered forward gathers the head); a SIGTERM stops both ranks
at one boundary with a full checkpoint (gathered to rank 0) and the rerun loads it, shards it
again and ends at the step count; the artifact is an ordinary transformers model (its own
class in config.json) whose weights moved away from the base, and spec.evaluation's greedy
sample (generation on the sharded model, every rank in lockstep) is the one-process run's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.runtime import run_runtime
from ml.test_distributed_training import accumulating_twin, step_losses, stop_and_resume
from ml.test_training_support import (
    result_of,
    trainer_events,
    training_config,
    training_data,
)

pytestmark = pytest.mark.ml

STEPS = 6
EVERY = 2
BATCH = 4
LOSS_TOLERANCE = 1e-4
"""Relative: the same sums in another order (FSDP's reduce-scatter of two ranks' gradients) in
fp32, and across a resume from the full checkpoint."""
SHARE_LIMIT = 0.6
"""A rank's parameter bytes over the model's with two ranks: half, plus the rows FSDP pads."""


def test_two_processes_shard_a_full_fine_tune_and_train_like_one(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = training_data(tmp_path, count=80)
    common = {
        "method": "full",
        "every": EVERY,
        "keep": 5,
        "threads": 1,
        "lr": "1e-3",
        "evaluation": {"prompts": ["Name a pet."], "maxNewTokens": 6},
    }
    two = training_config(
        tmp_path / "two", tiny_model, data, steps=STEPS, batch_size=BATCH, **common
    )
    one = accumulating_twin(tmp_path / "one", tiny_model, data, STEPS, BATCH, **common)
    first, before, stopped, seconds = stop_and_resume(two, one, STEPS)
    assert stopped.parallelism == "fsdp", stopped

    result = result_of(two.parent)
    assert result.outcome == "Succeeded" and result.parallelism == "fsdp", result
    assert result.metrics.steps == STEPS
    assert result.resumed_from_step is not None and result.resumed_from_step >= first
    ref = result_of(one.parent)
    assert ref.parallelism == "single" and ref.metrics.steps == STEPS
    assert ref.metrics.train_tokens == result.metrics.train_tokens

    # lockstep with the one-process run, before the SIGTERM and after the resume
    after = step_losses(two.parent)
    expected = step_losses(one.parent)
    assert sorted(expected) == list(range(1, STEPS + 1))
    assert sorted({**before, **after}) == list(range(1, STEPS + 1))
    for step, loss in {**before, **after}.items():
        assert loss == pytest.approx(expected[step], rel=LOSS_TOLERANCE), (step, loss)
    assert result.metrics.eval_loss == pytest.approx(ref.metrics.eval_loss, rel=LOSS_TOLERANCE)
    # spec.evaluation's greedy sample: every rank generates in lockstep (each forward gathers)
    assert result.evaluation is not None and ref.evaluation is not None
    assert result.evaluation.samples[0].completion == ref.evaluation.samples[0].completion

    # each rank holds about half the parameters' bytes (its own shards, measured), both launches
    sharded = trainer_events(two.parent, "sharded")
    assert len(sharded) == 4, sharded
    for event in sharded:
        share = event["local_parameter_bytes"] / event["parameter_bytes"]
        assert 0.4 < share < SHARE_LIMIT, event

    # the artifact is a plain transformers model, trained away from the base
    full = Path(next(a.path for a in result.artifacts if a.kind == "full"))
    config = json.loads((full / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["LlamaForCausalLM"], config
    check = (
        "import sys, torch; from transformers import AutoModelForCausalLM as M;"
        "a = M.from_pretrained(sys.argv[1]).state_dict(); b = M.from_pretrained(sys.argv[2])"
        ".state_dict(); assert a.keys() == b.keys(), a.keys() ^ b.keys();"
        "print(sum(not torch.equal(a[k], b[k]) for k in a), len(a))"
    )
    out = run_runtime(["-c", check, str(tiny_model), str(full)])
    changed, total = map(int, out.stdout.strip().splitlines()[-1].split())
    assert changed == total, (changed, total)
    print(f"FSDP run with a SIGTERM and a resume, and the one-process reference: {seconds:.1f} s")
