"""Helpers for the trainer's ML tests (no tests here): configs, trainer processes, results."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from harness.envtest import free_port  # noqa: F401 (re-exported to the tests)
from model_garden.api.contracts import TrainingResult
from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.runtime import runtime_env, runtime_python

STEPS = 60
"""Optimizer steps of the main LoRA run: ~2 epochs of 270 rows at batch 8 (seconds on CPU)."""


def training_data(folder: Path, count: int = 300) -> Path:
    return write_jsonl(folder / "pets.jsonl", alpaca_rows(count, seed=0))


def training_config(
    work: Path,
    model: Path,
    data: Path,
    *,
    method: str = "lora",
    steps: int = STEPS,
    batch_size: int = 8,
    lr: str = "3e-3",
    every: int = 20,
    keep: int = 2,
    keep_after_success: bool = True,
    merge: bool = False,
    port: int = 0,
    threads: int = 1,
    uid: str = "u-1",
    checkpoint_dir: Path | None = None,
    **spec: Any,
) -> Path:
    """Write a TrainingConfig for a run in ``work`` and return its path (checkpoints in
    ``work/checkpoints`` unless ``checkpoint_dir`` names another, e.g. a job's earlier one)."""
    work.mkdir(parents=True, exist_ok=True)
    config = {
        "job": {"name": work.name, "namespace": "test", "uid": uid},
        "spec": {
            "baseModel": {"uri": f"file://{model}"},
            "dataset": {"uri": f"file://{data}", "evalSplit": "0.1", "maxSeqLength": 256},
            "method": {"type": method, "lora": {"rank": 8, "alpha": 16, "dropout": "0.0"}},
            "hyperparameters": {
                "maxSteps": steps,
                "batchSize": batch_size,
                "learningRate": lr,
                "warmupRatio": "0.05",
            },
            "output": {"merge": merge},
            "checkpointing": {
                "everySteps": every,
                "keep": keep,
                "keepAfterSuccess": keep_after_success,  # the chain tests read them after
            },
            "carbon": {"country": "FRA"},
            **spec,
        },
        "runtime": {
            "baseModel": str(model),
            "datasetPath": str(data),
            "outputDir": str(work / "out"),
            "checkpointDir": str(checkpoint_dir or work / "checkpoints"),
            "artifactUri": f"file://{work / 'out'}",
            "progressPort": port,
            "terminationMessagePath": str(work / "termination-log"),
            "country": "FRA",
            "threads": threads,
        },
    }
    path = work / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    (work / "termination-log").touch()
    return path


def start_trainer(config: Path) -> subprocess.Popen[str]:
    log = (config.parent / "trainer.log").open("a", encoding="utf-8")
    return subprocess.Popen(
        [runtime_python(), "-m", "model_garden.training", "--config", str(config)],
        env=runtime_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def trainer_log(work: Path) -> str:
    return (work / "trainer.log").read_text(encoding="utf-8")


def wait(proc: subprocess.Popen[str], work: Path, timeout: float = 400) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"trainer timed out\n{trainer_log(work)[-4000:]}") from None


def result_of(work: Path) -> TrainingResult:
    text = (work / "termination-log").read_text(encoding="utf-8")
    assert text, trainer_log(work)[-4000:]
    return TrainingResult.model_validate_json(text)


def poll_during_run(proc: subprocess.Popen[str], port: int, timeout: float = 300) -> dict[str, Any]:
    """Fetch /progress and /metrics while the run is training (step > 0, not done)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            progress = httpx.get(f"http://127.0.0.1:{port}/progress", timeout=2).json()
            if progress["state"] == "Training" and progress["step"] > 0:
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                return {"progress": progress, "metrics": metrics}
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the trainer never answered /progress while training")


def run_folders(root: Path) -> list[Path]:
    """The per-run checkpoint folders (``run-<key>``) under a checkpoint directory."""
    return sorted(p for p in root.glob("run-*") if p.is_dir()) if root.is_dir() else []


def trainer_events(work: Path, msg: str) -> list[dict[str, Any]]:
    """The trainer's JSON log lines with this ``msg``."""
    lines = [x for x in trainer_log(work).splitlines() if x.startswith("{")]
    return [e for e in (json.loads(x) for x in lines) if e.get("msg") == msg]


def wait_for_checkpoint(
    proc: subprocess.Popen[str], root: Path, above: int, timeout: float = 300
) -> int:
    """Block until a complete checkpoint with step > ``above`` exists in a run folder under
    ``root``; return its step."""
    from model_garden.training.checkpoints import latest_checkpoint

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for folder in run_folders(root):
            latest = latest_checkpoint(folder)
            if latest is not None and int(latest.name.split("-")[1]) > above:
                return int(latest.name.split("-")[1])
        if proc.poll() is not None:
            raise AssertionError("the trainer ended before the checkpoint")
        time.sleep(0.02)
    raise AssertionError("no checkpoint in time")
