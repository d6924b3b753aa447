"""Local mode's object store: the same resources as in a cluster, kept as YAML files in one folder.

Layout under the home folder (``$MODEL_GARDEN_HOME``, default ``~/.local/share/model-garden``)::

    objects/<plural>/<name>.yaml          FineTuneJob, ModelVersion, InferenceDeployment
    artifacts/<namespace>/<model>/v<N>/   adapter/ and merged/ (as on the PVC in a cluster)
    artifacts/<namespace>/jobs/<job>/     checkpoints/, config and result of a training run
    base/, datasets/                      the embedded default model and data
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.registry import KINDS_BY_NAME

HOME_ENV = "MODEL_GARDEN_HOME"
R = TypeVar("R", FineTuneJob, ModelVersion, InferenceDeployment)


def default_home() -> Path:
    configured = os.environ.get(HOME_ENV)
    return Path(configured) if configured else Path.home() / ".local/share/model-garden"


class LocalStore:
    """Reads and writes resources as YAML, atomically (no half-written object on a crash)."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def path_of(self, kind: str, name: str) -> Path:
        return self.home / "objects" / KINDS_BY_NAME[kind].plural / f"{name}.yaml"

    def save(self, resource: BaseModel) -> Path:
        wire = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
        target = self.path_of(wire["kind"], wire["metadata"]["name"])
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(yaml.safe_dump(wire, sort_keys=False), encoding="utf-8")
        tmp.replace(target)
        return target

    def list(self, model: type[R]) -> list[R]:
        kind = model.model_fields["kind"].default
        folder = self.home / "objects" / KINDS_BY_NAME[kind].plural
        return [
            model.model_validate(yaml.safe_load(p.read_text(encoding="utf-8")))
            for p in sorted(folder.glob("*.yaml"))
        ]

    def next_version(self, model_name: str) -> int:
        """The next integer version of ``model_name`` (1 for a new model)."""
        versions = [
            mv.spec.version for mv in self.list(ModelVersion) if mv.spec.model == model_name
        ]
        return max(versions, default=0) + 1

    def artifacts(self, namespace: str = "default") -> Path:
        return self.home / "artifacts" / namespace
