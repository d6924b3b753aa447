"""Remote inputs and outputs of a pod run: fetch before, publish after.

The trainer and the serving launcher read local paths only. Before a run, every ``s3://`` or
``hf://`` path in its config is fetched into the pod's cache volume and replaced by the local
path; an ``s3://`` output or checkpoint folder is replaced by a folder in that cache. After a
successful training run the outputs are published (each artifact folder atomically, see
:mod:`.transfer`). Configs with only local paths come back unchanged, with no client created.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_garden.api.contracts import ServingConfig, TrainingConfig

from . import hf, s3, transfer
from .checkpoint_mirror import CheckpointMirror
from .uris import is_hf, is_remote, is_s3

STAGING_ENV = "MODEL_GARDEN_STAGING_DIR"


def staging_root() -> Path:
    """Where fetched inputs go: ``$MODEL_GARDEN_STAGING_DIR``, else the cache volume
    (``$XDG_CACHE_HOME``, an emptyDir in pods), else the temp folder."""
    if os.environ.get(STAGING_ENV):
        return Path(os.environ[STAGING_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or tempfile.gettempdir()
    return Path(base) / "model-garden-staging"


def _slot(uri: str) -> str:
    """A folder name per URI: the same URI is fetched once per pod, two never collide."""
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


class Fetcher:
    """Fetches remote URIs into the staging folder; the S3 client is made on first use."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or staging_root()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3.client()
        return self._client

    def fetch(self, uri: str, require_marker: bool = False) -> str:
        """The local path of ``uri`` (fetched now), or ``uri`` itself when it is local."""
        if is_s3(uri):
            dest = self.root / "inputs" / _slot(uri)
            return str(transfer.download(self.client, uri, dest, require_marker))
        if is_hf(uri):
            return str(hf.fetch(uri, self.root / "hub"))
        return uri


@dataclass
class StagedTraining:
    """A trainer config with local paths only, and where its s3:// outputs must go."""

    config: TrainingConfig
    output_uri: str | None = None
    """The s3:// folder the local output dir is published to (None: written in place)."""
    fetcher: Fetcher = field(default_factory=Fetcher)
    mirror: CheckpointMirror | None = None
    """The s3:// copy of the checkpoints, synced at each checkpoint (None: saved in place)."""


def stage_training(config: TrainingConfig, fetcher: Fetcher | None = None) -> StagedTraining:
    """Fetch the remote inputs and point remote outputs at the cache (see the module doc)."""
    fetcher = fetcher or Fetcher()
    rt = config.runtime
    paths = [rt.base_model, rt.dataset_path, rt.eval_dataset_path, rt.output_dir, rt.checkpoint_dir]
    if not any(is_remote(p) for p in paths):
        return StagedTraining(config, None, fetcher)
    job = fetcher.root / "jobs" / (config.job.uid or f"{config.job.namespace}-{config.job.name}")
    changes: dict[str, Any] = {
        "base_model": fetcher.fetch(rt.base_model),
        "dataset_path": fetcher.fetch(rt.dataset_path),
    }
    if rt.eval_dataset_path:
        changes["eval_dataset_path"] = fetcher.fetch(rt.eval_dataset_path)
    output_uri = None
    if is_s3(rt.output_dir):
        output_uri = rt.output_dir
        changes["output_dir"] = str(job / "output")
        changes["artifact_uri"] = rt.artifact_uri or rt.output_dir
    mirror = None
    if is_s3(rt.checkpoint_dir):
        # what an earlier pod of this job saved, so the run resumes where that one got to
        mirror = CheckpointMirror(fetcher.client, rt.checkpoint_dir, job / "checkpoints")
        changes["checkpoint_dir"] = str(mirror.restore())
    runtime = rt.model_copy(update=changes)
    staged = config.model_copy(update={"runtime": runtime})
    return StagedTraining(staged, output_uri, fetcher, mirror)


def save_checkpoints(staged: StagedTraining) -> None:
    """At the run's end: what the per-checkpoint syncs missed (an upload that failed) goes
    to S3 now, so the next pod resumes (s3:// checkpoints only)."""
    if staged.mirror is not None:
        staged.mirror.sync()


def drop_saved_checkpoints(staged: StagedTraining) -> None:
    """After success: the checkpoints saved to S3 go too."""
    if staged.mirror is not None:
        staged.mirror.drop()


def publish_training(staged: StagedTraining, artifacts: list[tuple[Path, str, str]]) -> None:
    """Publish each artifact (local folder, its s3:// URI, the digest the trainer reported),
    then the other output files; a digest that differs after upload is an error."""
    if staged.output_uri is None:
        return
    client = staged.fetcher.client
    for folder, uri, digest in artifacts:
        published = transfer.publish(client, folder, uri)
        if published.digest != digest:
            raise s3.StorageError(
                f"{uri}: published {published.digest}, but the trainer reported {digest}"
            )
    out = Path(staged.config.runtime.output_dir)
    transfer.upload_files(client, out, staged.output_uri, skip=[f for f, _, _ in artifacts])


def stage_serving(config: ServingConfig, fetcher: Fetcher | None = None) -> ServingConfig:
    """The serving config with its model and adapters fetched into the cache when remote.

    A FineTuneJob's outputs carry a completion marker and are required to (a half upload is
    refused); folders uploaded by other tools are taken whole."""
    remote = [a for a in (config.model, *config.adapters) if is_remote(a.path)]
    if not remote:
        return config
    fetcher = fetcher or Fetcher()

    def local(artifact: Any) -> Any:
        if not is_remote(artifact.path):
            return artifact
        return artifact.model_copy(update={"path": fetcher.fetch(artifact.path)})

    return config.model_copy(
        update={"model": local(config.model), "adapters": [local(a) for a in config.adapters]}
    )
