"""The run key: which checkpoints a run may resume from.

Checkpoints live on a claim every trainer mounts, under a folder named after the job. A job
deleted and recreated by the same name, or pointed at other data, must not resume the old run
(and so publish its weights). The key is the sha256 of the job's uid and of everything that
determines the weights: the base model and its revision, the dataset's content, and the spec's
``baseModel``, ``dataset``, ``method``, ``hyperparameters`` and ``backend``. Nothing else
enters it: ``carbon`` in particular does not, so raising ``spec.carbon.budgetKg`` after
``CarbonBudgetExceeded`` resumes the same run; nor do ``output``, ``checkpointing``,
``resources`` and the scheduling fields, which change where or how it runs, not what it learns.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from model_garden.api.contracts import TrainingConfig
from model_garden.api.digest import artifact_digest, file_sha256

from .ownership import owner_id

KEYED_SPEC_FIELDS = {"base_model", "dataset", "method", "hyperparameters", "backend"}
"""The FineTuneJob spec fields that determine the trained weights."""

KEY_FILE = "run-key.json"
"""Written into each run's checkpoint folder: the key and what went into it, for people."""


def dataset_digest(path: str | Path) -> str:
    """sha256 of the dataset's content: the file's bytes, or a folder's manifest."""
    p = Path(path)
    if p.is_file():
        return "sha256:" + file_sha256(p)
    return artifact_digest(p).digest


def key_inputs(config: TrainingConfig, dataset: str) -> dict[str, Any]:
    """What the key hashes (``dataset`` is :func:`dataset_digest` of the run's data)."""
    rt = config.runtime
    return {
        "owner": owner_id(config.job),
        "baseModel": rt.base_model,
        "baseModelRevision": rt.base_model_revision,
        "dataset": dataset,
        "spec": config.spec.model_dump(mode="json", by_alias=True, include=KEYED_SPEC_FIELDS),
    }


def run_key(inputs: dict[str, Any]) -> str:
    """Hex sha256 of the canonical JSON of :func:`key_inputs`."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def run_dir(checkpoint_root: str | Path, key: str) -> Path:
    """The folder of one run's checkpoints: ``<checkpoint_dir>/run-<key>``."""
    return Path(checkpoint_root) / f"run-{key}"


def write_key_file(folder: Path, key: str, inputs: dict[str, Any]) -> None:
    (folder / KEY_FILE).write_text(
        json.dumps({"key": key, "inputs": inputs}, indent=2, sort_keys=True), encoding="utf-8"
    )
