"""Two trainer processes under torchrun (gloo, CPU) train the tiny model for real.

What this proves (distributed.py): the two ranks sum their gradients every step (the run's
per-step losses equal a one-process run with twice the accumulation, which it is
mathematically); they agree on stopping (SIGTERM to the launcher: one checkpoint, exit 143, not
a hang and not torchrun's blanket 1); rank 0 alone writes (one checkpoint per step, one
progress server, one result); the rerun resumes from that checkpoint and ends at the right step
count; the adapter it saves loads with PEFT.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness.runtime import run_runtime
from ml.test_training_support import (
    result_of,
    start_trainer,
    trainer_events,
    trainer_log,
    training_config,
    training_data,
    wait,
    wait_for_checkpoint,
)
from model_garden.api.contracts import TrainingResult
from model_garden.runtime import runtime_env, runtime_python
from model_garden.training.run import EXIT_TERMINATED

pytestmark = pytest.mark.ml

STEPS = 8
EVERY = 3
BATCH = 4
LOSS_TOLERANCE = 1e-4
"""Relative: the same sums in another order (two partial sums, then all_reduce) in fp32.
Measured: all 8 steps equal to the log's 5 decimals, across the SIGTERM and the resume."""


def start_distributed(config: Path, processes: int = 2) -> subprocess.Popen[str]:
    log = (config.parent / "trainer.log").open("a", encoding="utf-8")
    cmd = [
        runtime_python(),
        "-m",
        "model_garden.training.launch",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        "model_garden.training",
        "--config",
        str(config),
    ]
    return subprocess.Popen(cmd, env=runtime_env(), stdout=log, stderr=subprocess.STDOUT, text=True)


def step_losses(work: Path) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in trainer_events(work, "step")}


def stop_and_resume(
    two: Path, one: Path, steps: int
) -> tuple[int, dict[int, float], TrainingResult, float]:
    """The two-process run (config ``two``) beside the one-process reference (``one``):
    SIGTERM the launcher once a checkpoint exists (both ranks stop at one boundary), then rerun
    it to the end from rank 0's checkpoint. Returns the first checkpoint's step, the step losses
    logged before the stop, the stopped run's result, and the seconds it all took."""
    reference = start_trainer(one)
    launcher = start_distributed(two)
    started = time.monotonic()
    try:
        first = wait_for_checkpoint(launcher, two.parent / "checkpoints", above=0)
        launcher.send_signal(signal.SIGTERM)
        code = wait(launcher, two.parent)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert code == EXIT_TERMINATED, trainer_log(two.parent)[-4000:]
    stopped = result_of(two.parent)
    assert stopped.reason == "Terminated", stopped
    before = step_losses(two.parent)
    assert first <= max(before) < steps, before

    (two.parent / "termination-log").write_text("", encoding="utf-8")
    code = wait(start_distributed(two), two.parent)
    assert code == 0, trainer_log(two.parent)[-5000:]
    assert wait(reference, one.parent) == 0, trainer_log(one.parent)[-4000:]
    return first, before, stopped, time.monotonic() - started


def accumulating_twin(
    work: Path, model: Path, data: Path, steps: int, batch: int, lr: str = "3e-3", **common: Any
) -> Path:
    """The one-process reference of a two-process run: the same steps and per-process batch,
    gradients accumulated over 2 batches (the two ranks' global batch)."""
    hyperparameters = {
        "maxSteps": steps,
        "batchSize": batch,
        "learningRate": lr,
        "warmupRatio": "0.05",
        "gradientAccumulationSteps": 2,
    }
    return training_config(work, model, data, lr=lr, hyperparameters=hyperparameters, **common)


def test_two_processes_train_like_one_with_double_accumulation(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = training_data(tmp_path, count=120)
    common = {"steps": STEPS, "batch_size": BATCH, "every": EVERY, "keep": 5, "threads": 1}
    two = training_config(tmp_path / "two", tiny_model, data, port=0, **common)
    one = accumulating_twin(
        tmp_path / "one",
        tiny_model,
        data,
        STEPS,
        BATCH,
        **{k: v for k, v in common.items() if k not in ("steps", "batch_size")},
    )
    first, before, _, seconds = stop_and_resume(two, one, STEPS)

    result = result_of(two.parent)
    assert result.outcome == "Succeeded" and result.backend == "transformers", result
    assert result.metrics.steps == STEPS
    assert result.resumed_from_step is not None and result.resumed_from_step >= first
    ref = result_of(one.parent)
    assert ref.metrics.steps == STEPS and ref.metrics.train_tokens == result.metrics.train_tokens

    # lockstep: every step's global loss matches the one-process double-accumulation run
    after = step_losses(two.parent)
    expected = step_losses(one.parent)
    assert sorted(expected) == list(range(1, STEPS + 1))
    for step, loss in {**before, **after}.items():
        assert loss == pytest.approx(expected[step], rel=LOSS_TOLERANCE), (step, loss)

    # rank 0 alone wrote: one checkpoint event per checkpointed step, one progress server
    saved = [e["path"] for e in trainer_events(two.parent, "checkpoint")]
    assert len(saved) == len(set(saved)), saved
    assert len(trainer_events(two.parent, "progress server")) == 2  # one per launch
    assert len(trainer_events(two.parent, "model")) == 4  # both ranks load, twice

    adapter = Path(next(a.path for a in result.artifacts if a.kind == "adapter"))
    check = (
        "import sys; from transformers import AutoModelForCausalLM; from peft import PeftModel;"
        "m = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sys.argv[1]),"
        " sys.argv[2]); print(sum(p.numel() for n, p in m.named_parameters() if 'lora_' in n))"
    )
    out = run_runtime(["-c", check, str(tiny_model), str(adapter)])
    assert int(out.stdout.strip().splitlines()[-1]) > 0
    print(f"two-process run with a SIGTERM and a resume, and the reference: {seconds:.1f} s")


def test_the_jobsets_environment_starts_two_nodes(tiny_model: Path, tmp_path: Path) -> None:
    """The ``PET_*`` environment a rendered JobSet gives its pods, played as two "nodes" on
    this machine (two launchers, static rendezvous; node 0's DNS name replaced by 127.0.0.1
    and the port by a free one): they rendezvous, train together and rank 0 reports."""
    from harness.envtest import free_port
    from model_garden.api import FineTuneJob
    from model_garden.operator.finetunejob.multinode import build_jobset
    from model_garden.operator.finetunejob.objects import build_job
    from model_garden.operator.settings import OperatorSettings
    from model_garden.operator.storage import Mounts

    body = {
        "apiVersion": "modelgarden.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "tune", "namespace": "test", "uid": "u-1"},
        "spec": {
            "baseModel": {"uri": "pvc://models/tiny"},
            "dataset": {"uri": "pvc://data/pets.jsonl"},
            "output": {"model": "pets", "storage": "pvc://artifacts"},
            "nodes": 2,
        },
    }
    ftj = FineTuneJob.model_validate(body)
    jobset = build_jobset(build_job(body, ftj, 1, OperatorSettings(), Mounts()), ftj)
    (container,) = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
        "containers"
    ]
    pet = {e["name"]: e.get("value") for e in container["env"] if e["name"].startswith("PET_")}
    assert pet["PET_NNODES"] == "2" and pet["PET_NPROC_PER_NODE"] == "1"
    pet["PET_MASTER_ADDR"], pet["PET_MASTER_PORT"] = "127.0.0.1", str(free_port())

    data = training_data(tmp_path, count=60)
    config = training_config(tmp_path / "nodes", tiny_model, data, steps=4, batch_size=4, every=2)
    log = (config.parent / "trainer.log").open("a", encoding="utf-8")
    launchers = []
    for rank in (0, 1):  # the job-index annotation each node's pod would carry
        env = {**runtime_env(), **pet, "PET_NODE_RANK": str(rank)}
        command = [runtime_python(), *container["command"][1:], "--config", str(config)]
        launchers.append(
            subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        )
    codes = [wait(p, config.parent) for p in launchers]
    assert codes == [0, 0], trainer_log(config.parent)[-5000:]
    result = result_of(config.parent)
    assert result.outcome == "Succeeded" and result.metrics.steps == 4
    assert len(trainer_events(config.parent, "progress server")) == 1  # node 0's rank 0 only
    assert len(trainer_events(config.parent, "model")) == 2  # one rank per node
