"""The trainer deletes only what its own FineTuneJob created (issue 8, item 4).

A directory is claimed with a marker holding the job's uid: absent or empty ones are claimed,
a retry of the same job (same uid) may reuse them, anything else is refused untouched — also
by a whole ``run()``, which then reports ``OutputNotOurs`` naming the path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_garden.api.contracts import Identity, TrainingResult
from model_garden.training import ownership
from model_garden.training.outputs import RESULT_FILE
from model_garden.training.run import EXIT_BAD_INPUT

from .trainer_runs import run_in_process, scratch_config


def test_absent_and_empty_directories_are_claimed_and_retries_reuse_them(tmp_path: Path) -> None:
    absent = tmp_path / "a" / "out"
    assert ownership.claim(absent, "uid-1") == absent
    assert ownership.read_owner(absent) == "uid-1"
    (absent / "adapter").mkdir()  # what a first attempt leaves
    assert ownership.claim(absent, "uid-1") == absent  # the retry of the same job
    empty = tmp_path / "empty"
    empty.mkdir()  # e.g. a subPath mount the kubelet made
    ownership.claim(empty, "uid-1")
    assert ownership.read_owner(empty) == "uid-1"


def test_a_foreign_or_unmarked_directory_is_refused_and_kept(tmp_path: Path) -> None:
    live = tmp_path / "live-version"
    (live / "merged").mkdir(parents=True)
    (live / "merged" / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(ownership.NotOurs, match="has no .model-garden-owner marker") as exc:
        ownership.claim(live, "uid-1")
    assert exc.value.path == live and str(live) in str(exc.value)
    assert (live / "merged" / "model.safetensors").read_bytes() == b"weights"
    assert not (live / ownership.MARKER).exists()

    other = tmp_path / "other-job"
    ownership.claim(other, "uid-old")
    with pytest.raises(ownership.NotOurs, match="belongs to 'uid-old'"):
        ownership.claim(other, "uid-new")  # a job recreated by the same name
    assert ownership.read_owner(other) == "uid-old"


def test_owner_is_the_uid_else_namespace_and_name() -> None:
    assert ownership.owner_id(Identity(name="j", namespace="ns", uid="u-9")) == "u-9"
    assert ownership.owner_id(Identity(name="j", namespace="ns")) == "ns/j"


def test_run_refuses_an_output_dir_it_does_not_own_and_deletes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "team" / "chat" / "v1"
    (out / "merged").mkdir(parents=True)
    (out / "merged" / "model.safetensors").write_bytes(b"live weights")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    config = scratch_config(tmp_path, dataset=tmp_path / "d.jsonl", output=out, uid="u-new")
    term = Path(config.runtime.termination_message_path)
    result, code = run_in_process(config)
    assert code == EXIT_BAD_INPUT  # no retry can fix it: the Job fails at once
    assert result.outcome == "Failed" and result.reason == ownership.REASON == "OutputNotOurs"
    assert str(out) in result.message and "nothing was deleted" in result.message
    assert TrainingResult.model_validate_json(term.read_text()).reason == "OutputNotOurs"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
    assert not (out / RESULT_FILE).exists() and not (tmp_path / "ckpt").exists()
