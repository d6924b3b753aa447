"""Checkpoint selection: only complete ones, newest first; partial saves are never picked."""

from __future__ import annotations

import json
from pathlib import Path

from model_garden.training import checkpoints as ck


def make(root: Path, step: int) -> Path:
    tmp = ck.begin(root, step)
    (tmp / "weights.safetensors").write_bytes(b"w" * 10)
    return ck.commit(tmp, step, {"tokens": step})


def test_commit_is_atomic_and_latest_is_newest_complete(tmp_path: Path) -> None:
    for step in (10, 20, 30):
        make(tmp_path, step)
    # a save killed half-way: temp folder, never renamed
    half = ck.begin(tmp_path, 40)
    (half / "weights.safetensors").write_bytes(b"w")
    # a folder with the final name but no marker (e.g. copied by hand)
    (tmp_path / "checkpoint-50").mkdir()
    (tmp_path / "checkpoint-50" / ck.STATE).write_text('{"step": 50}')
    # a marked one whose file was truncated after the marker was written
    bad = make(tmp_path, 60)
    (bad / "weights.safetensors").write_bytes(b"w")
    assert ck.latest_checkpoint(tmp_path) == tmp_path / "checkpoint-30"
    assert ck.read_state(tmp_path / "checkpoint-30") == {"tokens": 30, "step": 30}
    removed = {p.name for p in ck.clean_partial(tmp_path)}
    assert removed == {half.name, "checkpoint-50", "checkpoint-60"}
    assert [p.name for p in ck.complete_checkpoints(tmp_path)] == [
        "checkpoint-10",
        "checkpoint-20",
        "checkpoint-30",
    ]


def test_state_step_must_match_name(tmp_path: Path) -> None:
    path = make(tmp_path, 10)
    (path / ck.STATE).write_text(json.dumps({"step": 9}))
    assert ck.latest_checkpoint(tmp_path) is None


def test_prune_keeps_newest(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        make(tmp_path, step)
    assert [p.name for p in ck.prune(tmp_path, keep=2)] == ["checkpoint-1", "checkpoint-2"]
    assert [p.name for p in ck.complete_checkpoints(tmp_path)] == ["checkpoint-3", "checkpoint-4"]
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir())


def test_missing_root(tmp_path: Path) -> None:
    assert ck.latest_checkpoint(tmp_path / "nope") is None
    assert ck.clean_partial(tmp_path / "nope") == []
