"""The S3 copy of a run's checkpoints, kept at each checkpoint, on moto's S3 server.

The checkpoints are folders written the way ``training.checkpoints`` commits them (a state file
and the ``COMPLETE`` marker listing the files' sizes); tests/ml/test_s3_training.py kills a
real trainer and resumes it in a new pod from this copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_garden.storage import s3 as s3io
from model_garden.storage.checkpoint_mirror import CheckpointMirror, RemoteRun, remote_runs
from model_garden.storage.transfer import MARKER
from model_garden.storage.uris import parse_s3
from model_garden.training import checkpoints, ownership


def write_checkpoint(run_dir: Path, step: int, weights: bytes = b"w" * 64) -> Path:
    tmp = checkpoints.begin(run_dir, step)
    (tmp / "adapter.safetensors").write_bytes(weights)
    return checkpoints.commit(tmp, step, {})


def new_run(local: Path) -> Path:
    run_dir = ownership.claim(local / "run-abc", "u-1")
    (run_dir / "run-key.json").write_text('{"key": "abc"}')
    return run_dir


def keys(s3c: Any, uri: str) -> set[str]:
    loc = parse_s3(uri)
    return {k.removeprefix(loc.prefix) for k, _ in s3io.list_prefix(s3c, loc)}


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ([], {}),
        (  # a complete checkpoint has its marker; one without is an upload cut short
            [
                "p/run-a/.model-garden-owner",
                "p/run-a/checkpoint-5/adapter.safetensors",
                f"p/run-a/checkpoint-5/{MARKER}",
                "p/run-a/checkpoint-10/adapter.safetensors",
            ],
            {
                "run-a": RemoteRun(
                    frozenset({".model-garden-owner"}),
                    {"checkpoint-5": True, "checkpoint-10": False},
                )
            },
        ),
        (  # keys outside the layout (a stray upload, a temp folder) are not checkpoints
            ["p/notes.txt", "p/run-b/.tmp-checkpoint-3-1/x", f"p/other/checkpoint-1/{MARKER}"],
            {"run-b": RemoteRun(frozenset(), {})},
        ),
        (  # a marker deeper in the folder is a file of it, not its completion
            [f"p/run-c/checkpoint-2/sub/{MARKER}"],
            {"run-c": RemoteRun(frozenset(), {"checkpoint-2": False})},
        ),
    ],
)
def test_remote_runs_reads_the_layout_from_a_listing(
    listed: list[str], expected: dict[str, RemoteRun]
) -> None:
    assert remote_runs(listed, "p/") == expected


def test_newest_complete_skips_an_upload_cut_short() -> None:
    run = RemoteRun(
        frozenset(), {"checkpoint-5": True, "checkpoint-40": False, "checkpoint-9": True}
    )
    assert run.newest_complete() == "checkpoint-9"
    assert RemoteRun(frozenset(), {"checkpoint-1": False}).newest_complete() is None


def test_each_sync_publishes_the_new_checkpoint_then_deletes_the_pruned_one(
    tmp_path: Path, bucket: str, s3c: Any
) -> None:
    uri = f"s3://{bucket}/jobs/chat/checkpoints"
    local = tmp_path / "pod-1"
    mirror = CheckpointMirror(s3c, uri, local)
    run_dir = new_run(local)
    write_checkpoint(run_dir, 5)
    assert mirror.sync() == ["run-abc/checkpoint-5"]
    write_checkpoint(run_dir, 10)
    assert mirror.sync() == ["run-abc/checkpoint-10"]  # checkpoint-5 is not uploaded again
    checkpoints.prune(run_dir, keep=1)  # the trainer keeps one: the copy follows
    assert mirror.sync() == []
    assert keys(s3c, uri) == {
        "run-abc/.model-garden-owner",
        "run-abc/run-key.json",
        "run-abc/checkpoint-10/adapter.safetensors",
        "run-abc/checkpoint-10/trainer_state.json",
        "run-abc/checkpoint-10/COMPLETE",
        f"run-abc/checkpoint-10/{MARKER}",
    }


def test_a_pod_killed_after_a_checkpoint_resumes_in_a_new_pod_from_the_copy(
    tmp_path: Path, bucket: str, s3c: Any
) -> None:
    """Nothing runs at the first pod's end (SIGKILL): what the syncs sent is all there is."""
    uri = f"s3://{bucket}/jobs/chat/checkpoints"
    first = CheckpointMirror(s3c, uri, tmp_path / "pod-1")
    run_dir = new_run(first.local)
    write_checkpoint(run_dir, 5, b"a" * 64)
    first.sync()
    write_checkpoint(run_dir, 10, b"b" * 64)
    first.sync()
    write_checkpoint(run_dir, 15)  # saved locally, killed before its sync

    second = CheckpointMirror(s3c, uri, tmp_path / "pod-2")
    restored = second.restore() / "run-abc"
    assert checkpoints.latest_checkpoint(restored) == restored / "checkpoint-10"
    assert (restored / "checkpoint-10" / "adapter.safetensors").read_bytes() == b"b" * 64
    assert not (restored / "checkpoint-5").exists()  # only the newest is fetched
    assert ownership.claim(restored, "u-1") == restored  # still this job's folder
    assert json.loads((restored / "run-key.json").read_text()) == {"key": "abc"}


def test_an_upload_cut_short_is_not_restored(tmp_path: Path, bucket: str, s3c: Any) -> None:
    uri = f"s3://{bucket}/jobs/chat/checkpoints"
    first = CheckpointMirror(s3c, uri, tmp_path / "pod-1")
    run_dir = new_run(first.local)
    write_checkpoint(run_dir, 5)
    first.sync()
    # checkpoint-10's files reached S3 but its marker did not: the pod died mid-upload
    s3io.upload_file(
        s3c,
        write_checkpoint(run_dir, 10) / "adapter.safetensors",
        parse_s3(f"{uri}/run-abc/checkpoint-10/adapter.safetensors"),
    )
    restored = CheckpointMirror(s3c, uri, tmp_path / "pod-2").restore() / "run-abc"
    assert checkpoints.latest_checkpoint(restored) == restored / "checkpoint-5"
    assert not (restored / "checkpoint-10").exists()


def test_nothing_saved_yet_restores_an_empty_folder(tmp_path: Path, bucket: str, s3c: Any) -> None:
    mirror = CheckpointMirror(s3c, f"s3://{bucket}/jobs/new/checkpoints", tmp_path / "pod")
    assert mirror.restore() == tmp_path / "pod" and list((tmp_path / "pod").iterdir()) == []


def test_a_failed_sync_is_logged_and_training_goes_on(
    tmp_path: Path, s3c: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = CheckpointMirror(s3c, "s3://no-such-bucket-here/ckpt", tmp_path / "pod")
    write_checkpoint(new_run(mirror.local), 5)
    mirror.sync_logged()  # does not raise
    (line,) = [x for x in capsys.readouterr().out.splitlines() if "checkpoint-not-mirrored" in x]
    assert "no-such-bucket-here" in line


def test_drop_deletes_the_whole_copy(tmp_path: Path, bucket: str, s3c: Any) -> None:
    uri = f"s3://{bucket}/jobs/chat/checkpoints"
    mirror = CheckpointMirror(s3c, uri, tmp_path / "pod")
    write_checkpoint(new_run(mirror.local), 5)
    mirror.sync()
    mirror.drop()
    assert keys(s3c, uri) == set()
