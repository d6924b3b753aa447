"""Kill a full fine-tuning run mid-way (SIGTERM, then SIGKILL) and resume it to the same end.

One chain of three trainer processes on one checkpoint folder:
1. SIGTERM after the first checkpoint: a checkpoint is written and the process exits 143
   within the stated bound, reporting ``Terminated``;
2. the rerun resumes from it and is SIGKILLed after a later checkpoint (mid-step, possibly
   mid-save); a half-written checkpoint and an unmarked one are then planted as well;
3. the third run ignores and removes those, resumes from the newest complete checkpoint and
   ends at exactly the configured step count.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ml.test_training_support import (
    result_of,
    start_trainer,
    trainer_log,
    training_config,
    training_data,
    wait,
    wait_for_checkpoint,
)
from model_garden.training import checkpoints
from model_garden.training.run import EXIT_TERMINATED, SIGTERM_EXIT_BOUND_SECONDS

pytestmark = pytest.mark.ml

STEPS = 150
FULL_EVAL_LOSS_DROP = 0.20
"""Full fine-tuning's final eval loss is at least 20% below the untrained model's."""


@pytest.fixture(scope="module")
def chain(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("resume") / "full-resume"
    data = training_data(work.parent)
    cfg = training_config(
        work, tiny_model, data, method="full", steps=STEPS, lr="1e-3", every=10, keep=2
    )
    root = work / "checkpoints"
    out: dict[str, Any] = {"work": work}

    first = start_trainer(cfg)
    out["first_ckpt"] = wait_for_checkpoint(first, root, above=0)
    signalled = time.monotonic()
    first.send_signal(signal.SIGTERM)
    out["term_code"] = wait(first, work, timeout=SIGTERM_EXIT_BOUND_SECONDS + 30)
    out["term_seconds"] = time.monotonic() - signalled
    out["term_result"] = result_of(work)
    out["after_term"] = checkpoints.latest_checkpoint(root)

    second = start_trainer(cfg)
    out["killed_after"] = wait_for_checkpoint(second, root, above=int(out["after_term"].name[11:]))
    second.send_signal(signal.SIGKILL)
    second.wait(timeout=30)
    out["after_kill"] = checkpoints.latest_checkpoint(root)
    # what a kill during a save leaves: a temp folder, and a final-named folder without marker
    half = root / ".tmp-checkpoint-9990-1"
    half.mkdir()
    (half / "weights.safetensors").write_bytes(b"\0" * 100)
    fake = root / "checkpoint-9999"
    fake.mkdir()
    (fake / "trainer_state.json").write_text('{"step": 9999}')

    third = start_trainer(cfg)
    out["final_code"] = wait(third, work)
    out["final"] = result_of(work)
    out["leftovers"] = sorted(p.name for p in root.iterdir())
    out["log"] = trainer_log(work)
    return out


def test_sigterm_checkpoints_and_exits_within_the_bound(chain: dict[str, Any]) -> None:
    assert chain["term_code"] == EXIT_TERMINATED, chain["log"][-3000:]
    assert chain["term_seconds"] < SIGTERM_EXIT_BOUND_SECONDS
    result = chain["term_result"]
    assert result.outcome == "Failed" and result.reason == "Terminated"
    saved = int(chain["after_term"].name.split("-")[1])
    assert saved >= chain["first_ckpt"] and "checkpoint saved" in result.message


def test_rerun_after_sigkill_resumes_from_the_newest_complete_checkpoint(
    chain: dict[str, Any],
) -> None:
    final = chain["final"]
    assert chain["final_code"] == 0, chain["log"][-3000:]
    newest = int(chain["after_kill"].name.split("-")[1])
    assert newest >= chain["killed_after"] > int(chain["after_term"].name.split("-")[1])
    assert final.resumed_from_step == newest
    assert final.metrics.steps == STEPS and final.outcome == "Succeeded"
    assert "removed incomplete checkpoints" in chain["log"]


def test_no_partial_checkpoint_survives_and_keep_is_honoured(chain: dict[str, Any]) -> None:
    # every 10 steps, keep 2; the last step needs none (its artifacts are the output)
    assert chain["leftovers"] == [f"checkpoint-{STEPS - 20}", f"checkpoint-{STEPS - 10}"]


def test_full_fine_tuning_learns_across_restarts(chain: dict[str, Any]) -> None:
    m = chain["final"].metrics
    assert m.initial_eval_loss is not None and m.eval_loss is not None
    assert m.eval_loss <= (1 - FULL_EVAL_LOSS_DROP) * m.initial_eval_loss, m
    assert [a.kind for a in chain["final"].artifacts] == ["full"]
    # energy and tokens add up across the three processes
    assert chain["final"].carbon.energy_kwh > chain["term_result"].carbon.energy_kwh > 0
