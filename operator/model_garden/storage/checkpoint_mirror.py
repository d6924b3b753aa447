"""An ``s3://`` copy of a run's checkpoints, kept up to date as each one is saved.

A pod that is killed without warning (OOM, a lost node, SIGKILL at the end of the grace period)
uploads nothing on its way out, so the copy cannot wait for the run to stop: each checkpoint is
published the moment it is committed locally, and the next pod, whatever ended this one,
resumes from the newest checkpoint that reached S3.

The remote layout is the local one: ``<uri>/run-<key>/checkpoint-<step>/`` plus the run
folder's own files (the owner marker and the run key, see ``training.resume``). Each checkpoint
folder is published on its own with its completion marker (:mod:`.transfer`), so an upload cut
short is never restored: the run resumes from the one before. A sync publishes what is
complete locally and missing remotely, *then* deletes the remote checkpoints that are no longer
local (pruned), so there is always a complete one to resume from; the remote copy holds what
``checkpointing.keep`` keeps.

Uploads are synchronous: the step that saved the checkpoint waits for them (a LoRA checkpoint
is a few MiB; a full fine-tune's should pick ``everySteps`` with this in mind). One that fails
is logged and done again by the next sync (the next checkpoint, or the run's end): training
goes on, since the local checkpoints are still there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import s3 as s3io
from . import transfer
from .s3 import StorageError
from .uris import parse_s3

RUN_PREFIX = "run-"


@dataclass(frozen=True)
class RemoteRun:
    """What S3 holds of one run folder: its own files, and its checkpoint folders with whether
    each one's upload completed."""

    files: frozenset[str]
    checkpoints: dict[str, bool]

    def newest_complete(self) -> str | None:
        done = [name for name, complete in self.checkpoints.items() if complete]
        return max(done, key=_step) if done else None


def _step(name: str) -> int:
    """The checkpoint folder's step, -1 for a name that is not a checkpoint's."""
    from model_garden.training.checkpoints import step_of

    step = step_of(name)
    return -1 if step is None else step


def remote_runs(keys: list[str], prefix: str) -> dict[str, RemoteRun]:
    """Group the object keys under the mirror's ``prefix`` by run folder (pure: a listing in,
    the layout out). Keys outside the layout are ignored."""
    files: dict[str, set[str]] = {}
    checkpoints: dict[str, dict[str, bool]] = {}
    for key in keys:
        parts = key.removeprefix(prefix).split("/")
        if not parts[0].startswith(RUN_PREFIX):
            continue
        run = parts[0]
        files.setdefault(run, set())
        checkpoints.setdefault(run, {})
        if len(parts) == 2:
            files[run].add(parts[1])
        elif len(parts) >= 3 and _step(parts[1]) >= 0:
            complete = len(parts) == 3 and parts[2] == transfer.MARKER
            checkpoints[run][parts[1]] = checkpoints[run].get(parts[1], False) or complete
    return {run: RemoteRun(frozenset(files[run]), checkpoints[run]) for run in files}


class CheckpointMirror:
    """The S3 copy of the checkpoints under one local checkpoint folder (see the module doc)."""

    def __init__(self, client: Any, uri: str, local: Path) -> None:
        self.client = client
        self.uri = uri.rstrip("/")
        self.local = local

    def _remote(self, rel: str) -> str:
        return f"{self.uri}/{rel}"

    def _listing(self) -> dict[str, RemoteRun]:
        loc = parse_s3(self.uri)
        return remote_runs([k for k, _ in s3io.list_prefix(self.client, loc)], loc.prefix)

    def restore(self) -> Path:
        """Fetch, per run folder, its own files and its newest complete checkpoint into the
        local folder (made if absent); returns the local folder."""
        self.local.mkdir(parents=True, exist_ok=True)
        for run, remote in self._listing().items():
            newest = remote.newest_complete()
            if newest is None:
                continue  # nothing to resume from: the run folder is claimed afresh
            folder = self.local / run
            for name in remote.files:
                transfer.download(self.client, self._remote(f"{run}/{name}"), folder)
            transfer.download(
                self.client, self._remote(f"{run}/{newest}"), folder / newest, require_marker=True
            )
        return self.local

    def sync(self) -> list[str]:
        """Publish every local complete checkpoint S3 lacks, then delete the remote ones no
        longer kept locally; returns what was published (``run-…/checkpoint-…``)."""
        from model_garden.training.checkpoints import complete_checkpoints

        listing = self._listing()
        published: list[str] = []
        for folder in sorted(self.local.glob(f"{RUN_PREFIX}*")):
            if not folder.is_dir():
                continue
            run = folder.name
            remote = listing.get(run, RemoteRun(frozenset(), {}))
            kept = complete_checkpoints(folder)
            if not kept:
                continue
            own_files = [p for p in folder.iterdir() if p.is_file()]
            for path in own_files:
                if path.name not in remote.files:
                    s3io.upload_file(
                        self.client, path, parse_s3(self._remote(f"{run}/{path.name}"))
                    )
            for checkpoint in kept:
                if not remote.checkpoints.get(checkpoint.name):
                    transfer.publish(
                        self.client, checkpoint, self._remote(f"{run}/{checkpoint.name}")
                    )
                    published.append(f"{run}/{checkpoint.name}")
            names = {c.name for c in kept}
            for gone in sorted(set(remote.checkpoints) - names):
                transfer.delete_prefix(self.client, self._remote(f"{run}/{gone}"))
        return published

    def sync_logged(self) -> None:
        """:meth:`sync` for the training loop: a failure is logged, never raised (the next
        checkpoint or the run's end syncs again)."""
        from model_garden.training.session import log

        started = time.monotonic()
        try:
            published = self.sync()
        except StorageError as exc:
            log("checkpoint-not-mirrored", uri=self.uri, error=str(exc))
            return
        if published:
            seconds = round(time.monotonic() - started, 3)
            log("checkpoint-mirrored", uri=self.uri, published=published, seconds=seconds)

    def drop(self) -> None:
        """Delete the whole S3 copy (the job succeeded and keeps no checkpoints)."""
        transfer.delete_prefix(self.client, self.uri)
