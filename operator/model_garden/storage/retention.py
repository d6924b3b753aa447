"""What is removed, and when: a succeeded job's checkpoints, a deleted version's artifact.

Checkpoints exist to resume a run; once the job succeeded and its artifacts are saved (and
published) they are dead weight, so the trainer itself removes its own run folders (it already
has them mounted writable, so no extra Job or permission is needed) unless
``spec.checkpointing.keepAfterSuccess``. Oldest first: a removal cut short leaves the newest
checkpoint, from which a retry would finish at once.

A ModelVersion with ``spec.retention: Delete`` has its artifact removed by a cleanup Job
(:func:`main`) before the version goes: a folder on a claim (mounted writable) or file://, or
the objects under an s3:// prefix (marker first, see :mod:`.transfer`). hf:// artifacts are
only cached copies: nothing to delete.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from . import s3, transfer
from .uris import is_hf, is_s3

RUN_GLOB = "run-*"


def drop_checkpoints(checkpoint_dir: str | Path, owner: str) -> list[Path]:
    """Remove this job's run folders (marked with its ``owner``) under ``checkpoint_dir``,
    oldest checkpoint first; folders of anyone else are left alone. Returns what went."""
    from model_garden.training import checkpoints, ownership

    root = Path(checkpoint_dir)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for run in sorted(root.glob(RUN_GLOB)):
        if not run.is_dir() or ownership.read_owner(run) != owner:
            continue
        for ckpt in checkpoints.complete_checkpoints(run):  # oldest first
            shutil.rmtree(ckpt, ignore_errors=True)
            removed.append(ckpt)
        shutil.rmtree(run, ignore_errors=True)
        removed.append(run)
    return removed


class Refused(ValueError):
    """A target the cleanup will not delete (a claim or bucket root, a relative path)."""


def delete_artifact(target: str) -> int:
    """Delete the artifact at ``target`` (a local path or s3:// URI); returns the files or
    objects removed (0 when it was already gone: a retried Job succeeds)."""
    if is_hf(target):
        return 0
    if is_s3(target):
        return transfer.delete_prefix(s3.client(), target)
    path = Path(target)
    if not path.is_absolute() or len(path.parts) < 3:
        raise Refused(f"{target}: refusing to delete a relative or top-level path")
    if path.is_file():
        path.unlink()
        return 1
    if not path.exists():
        return 0
    count = sum(1 for p in path.rglob("*") if p.is_file())
    shutil.rmtree(path)
    return count


def main(argv: list[str] | None = None) -> int:
    """``python -m model_garden.storage.retention --target PATH_OR_URI``: the cleanup Job."""
    parser = argparse.ArgumentParser(prog="python -m model_garden.storage.retention")
    parser.add_argument("--target", required=True, help="local path or s3:// URI to delete")
    parser.add_argument("--termination-log", default="/dev/termination-log")
    args = parser.parse_args(argv)
    try:
        report: dict[str, object] = {"deleted": delete_artifact(args.target)}
        code = 0
    except (Refused, s3.StorageError, OSError) as exc:
        report, code = {"error": str(exc)}, 1
    text = json.dumps(report)
    print(text)
    try:
        Path(args.termination_log).write_text(text, encoding="utf-8")
    except OSError:
        pass
    return code


if __name__ == "__main__":
    sys.exit(main())
