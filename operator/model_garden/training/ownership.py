"""Which directories this FineTuneJob may write over: the ones it created.

The trainer replaces its artifact folders and prunes its checkpoints, so it deletes files. A
directory it is pointed at may hold someone else's data (a leftover ConfigMap naming a live
version's folder), so before it writes anything it *claims* each directory: an absent or empty
one gets a marker file holding the job's uid; one holding our marker is ours (a retry of the
same job); anything else is refused with :class:`NotOurs` and left untouched.
"""

from __future__ import annotations

from pathlib import Path

from model_garden.api.contracts import Identity

MARKER = ".model-garden-owner"
REASON = "OutputNotOurs"
"""The ``TrainingResult`` reason of a refusal."""


class NotOurs(Exception):
    """A directory this job did not create; nothing in it was changed."""

    def __init__(self, path: Path, found: str | None) -> None:
        self.path = path
        self.found = found
        held = f"it belongs to {found!r}" if found else f"it has no {MARKER} marker"
        super().__init__(
            f"{path} is not empty and was not created by this FineTuneJob ({held}); nothing was "
            "deleted: point the job at another output or delete that directory yourself"
        )


def owner_id(job: Identity) -> str:
    """What the marker holds: the job's uid (namespace/name where a run has no uid)."""
    return job.uid or f"{job.namespace}/{job.name}"


def read_owner(path: Path) -> str | None:
    try:
        return (path / MARKER).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def claim(path: Path, owner: str) -> Path:
    """Make ``path`` ours or raise :class:`NotOurs`; creates it (and its parents) if absent."""
    path.mkdir(parents=True, exist_ok=True)
    found = read_owner(path)
    if found == owner:
        return path
    if found is not None or any(path.iterdir()):
        raise NotOurs(path, found)
    (path / MARKER).write_text(owner + "\n", encoding="utf-8")
    return path
