"""The trainer's history.jsonl: one line per logged step and evaluation, read by the read API."""

from __future__ import annotations

import json
from pathlib import Path

from model_garden.readapi.history import JOB_HISTORY, job_points
from model_garden.training.progress import ProgressTracker
from model_garden.training.stages import HISTORY_FILE


def test_each_step_and_evaluation_appends_a_line(tmp_path: Path) -> None:
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.0]).__next__
    t = ProgressTracker(total_steps=3, clock=clock)
    t.history = tmp_path / HISTORY_FILE
    t.start_training()
    t.step_done(1, 0.5, 2.5, 1e-4, tokens=100)
    t.step_done(2, 1.0, 2.0, 2e-4, tokens=100)
    t.set_eval_loss(2.2)
    t.step_done(3, 1.5, 1.8, 2e-4, tokens=100)
    lines = [json.loads(x) for x in t.history.read_text().splitlines()]
    assert [(x["step"], x["loss"], x["evalLoss"]) for x in lines] == [
        (1, 2.5, None),
        (2, 2.0, None),
        (2, 2.0, 2.2),
        (3, 1.8, None),  # the eval loss only where it was measured: no flat line after it
    ]
    assert lines[0]["learningRate"] == 1e-4 and lines[0]["tokensPerSecond"] == 100.0
    assert lines[0]["epoch"] == 0.5 and lines[0]["time"].endswith("Z")
    # the read API keeps the last line of a step: the evaluation's
    points = job_points(lines)
    assert [(p.step, p.eval_loss) for p in points] == [(1, None), (2, 2.2), (3, None)]


def test_no_history_without_a_path_and_a_failed_write_stops_it(tmp_path: Path) -> None:
    t = ProgressTracker(total_steps=2)
    t.step_done(1, 0.5, 2.5, 1e-4, tokens=10)  # no file configured: nothing written, no error
    t.history = tmp_path / "missing-dir" / HISTORY_FILE
    t.step_done(2, 1.0, 2.0, 1e-4, tokens=10)
    assert t.history is None and not (tmp_path / "missing-dir").exists()


def test_the_read_api_reads_the_file_the_trainer_writes() -> None:
    assert JOB_HISTORY == HISTORY_FILE
