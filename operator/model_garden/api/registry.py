"""The three kinds as Kubernetes sees them: names, printer columns, subresources.

Printer columns are for people: they read display figures the controllers write rounded
(see ``display``), never raw floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .finetunejob import FineTuneJob
from .inferencedeployment import InferenceDeployment
from .modelversion import ModelVersion

CATEGORY = "modelgarden"


def _condition_column(name: str, type: str) -> dict[str, Any]:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f'.status.conditions[?(@.type=="{type}")].status',
    }


AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class Kind:
    """One custom resource kind and how it is presented."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    model: type[BaseModel]
    columns: tuple[dict[str, Any], ...]
    scale: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def singular(self) -> str:
        return self.kind.lower()


KINDS: tuple[Kind, ...] = (
    Kind(
        kind="FineTuneJob",
        plural="finetunejobs",
        short_names=("ftj",),
        model=FineTuneJob,
        columns=(
            _condition_column("Succeeded", "Succeeded"),
            {"name": "Step", "type": "integer", "jsonPath": ".status.progress.step"},
            {"name": "Total", "type": "integer", "jsonPath": ".status.progress.totalSteps"},
            {"name": "Loss", "type": "number", "jsonPath": ".status.progress.loss"},
            {"name": "Model", "type": "string", "jsonPath": ".status.modelVersion"},
            {"name": "CO2e", "type": "string", "jsonPath": ".status.carbon.emissions"},
            AGE,
        ),
    ),
    Kind(
        kind="ModelVersion",
        plural="modelversions",
        short_names=("mv",),
        model=ModelVersion,
        columns=(
            {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
            {"name": "Version", "type": "integer", "jsonPath": ".spec.version"},
            {"name": "Format", "type": "string", "jsonPath": ".spec.artifact.format"},
            {"name": "Stage", "type": "string", "jsonPath": ".spec.stage"},
            _condition_column("Ready", "Ready"),
            {"name": "CO2e", "type": "string", "jsonPath": ".status.lifetimeEmissions"},
            AGE,
        ),
    ),
    Kind(
        kind="InferenceDeployment",
        plural="inferencedeployments",
        short_names=("idep",),
        model=InferenceDeployment,
        columns=(
            _condition_column("Ready", "Ready"),
            {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Version", "type": "string", "jsonPath": ".status.modelVersion"},
            {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
            AGE,
        ),
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
)

KINDS_BY_NAME = {k.kind: k for k in KINDS}
