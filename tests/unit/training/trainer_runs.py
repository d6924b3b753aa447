"""Run the trainer's ``run()`` in-process on a TrainingConfig that points at scratch paths.

Tests of the trainer's refusals (a dataset that does not parse, an output directory that is not
this job's) need the same config and the same care: ``run()`` installs a SIGTERM handler, which
must not outlive the test.
"""

from __future__ import annotations

import signal
from pathlib import Path

from model_garden.api.contracts import TrainingConfig, TrainingResult
from model_garden.training.run import run


def scratch_config(tmp_path: Path, *, dataset: Path, output: Path, uid: str) -> TrainingConfig:
    """Job ``team/chat`` reading ``dataset`` and writing ``output``; its termination log exists."""
    term = tmp_path / "termination-log"
    term.touch()
    return TrainingConfig.model_validate(
        {
            "job": {"name": "chat", "namespace": "team", "uid": uid},
            "spec": {
                "baseModel": {"uri": "file:///models/base"},
                "dataset": {"uri": "file:///data/d.jsonl"},
            },
            "runtime": {
                "baseModel": "/models/base",
                "datasetPath": str(dataset),
                "outputDir": str(output),
                "checkpointDir": str(tmp_path / "ckpt"),
                "progressPort": 0,
                "terminationMessagePath": str(term),
            },
        }
    )


def run_in_process(config: TrainingConfig) -> tuple[TrainingResult, int]:
    """``run(config)``, with the SIGTERM handler it installs put back afterwards."""
    previous = signal.getsignal(signal.SIGTERM)
    try:
        return run(config)
    finally:
        signal.signal(signal.SIGTERM, previous)
