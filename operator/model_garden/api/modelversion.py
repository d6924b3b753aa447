"""ModelVersion: an immutable, verified model artifact with its lineage and lifetime emissions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from .common import (
    ApiModel,
    CarbonMethod,
    Conditions,
    LabelNamedMeta,
)
from .fields import (
    DECIMAL_PATTERN,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    SUBDOMAIN_MAX,
    ArtifactUri,
    ListMap,
)

MODEL_NAME_MAX = 50
"""Longest model name: ``<model>-v<version>`` must stay a 63-character label."""
VERSION_MAX = 999_999_999
"""Largest version: 9 digits, so 50 + len("-v") + 9 <= 63."""

IMMUTABLE_FIELDS = (
    "model",
    "version",
    "artifact",
    "source",
    "metrics",
    "trainingCarbon",
    "evaluation",
)


class ArtifactFormat(StrEnum):
    MERGED = "merged"
    ADAPTER = "adapter"
    GGUF = "gguf"


class Artifact(ApiModel):
    """Where the weights are and what they are."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.format != 'adapter' || has(self.baseModel)",
                    "message": "baseModel is required when format is adapter",
                }
            ]
        }
    )

    uri: ArtifactUri = Field(
        description=(
            "pvc://, s3:// or file:// of the directory, or hf://<org>/<name>@<revision> of a"
            " Hub model (imported: downloaded and verified by the pods that use it)."
        )
    )
    format: ArtifactFormat = Field(description="merged model, LoRA adapter, or gguf file.")
    base_model: str | None = Field(
        default=None,
        min_length=1,
        description="For adapters: the base model (hub id, URI or ModelVersion name).",
    )
    digest: str | None = Field(
        default=None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="sha256 over the artifact's files as the trainer reported it.",
    )
    size_bytes: int | None = Field(default=None, ge=0, description="Total size of the files.")

    @model_validator(mode="after")
    def _adapter_needs_base(self) -> Artifact:
        if self.format == ArtifactFormat.ADAPTER and not self.base_model:
            raise ValueError("baseModel is required when format is adapter")
        return self


class Source(ApiModel):
    """Lineage: the FineTuneJob that produced this version (absent for imported models)."""

    fine_tune_job: str | None = Field(default=None, description="FineTuneJob name.")
    fine_tune_job_uid: str | None = Field(default=None, description="FineTuneJob uid.")


class TrainingCarbon(ApiModel):
    """Carbon of the training run that produced this version (decimal strings: spec has no floats)."""

    energy_kwh: str = Field(default="0", pattern=DECIMAL_PATTERN, description="Energy, kWh.")
    emissions_kg: str = Field(default="0", pattern=DECIMAL_PATTERN, description="kg CO2e.")
    method: CarbonMethod = Field(
        default=CarbonMethod.ESTIMATED, description="measured or estimated."
    )


class OperationKind(StrEnum):
    """Every kind of operation whose carbon a version carries (tests enumerate them)."""

    TRAINING = "training"
    VERIFICATION = "verification"
    EXPORT = "export"
    EVALUATION = "evaluation"
    BATCH = "batch"
    SERVING = "serving"


USER_RECORDED_OPERATIONS = (OperationKind.EXPORT, OperationKind.EVALUATION, OperationKind.BATCH)
"""Run by the CLI on the user's behalf (``mg export``, ``mg eval``, ``mg batch --offline``),
which records them in the ``modelgarden.dev/operations-carbon`` annotation; the others come from
what the operator itself observed (the job's result, its verification Job, the meters)."""


class OperationCarbon(ApiModel):
    """The energy and emissions of one kind of operation on this version, all runs together."""

    energy_kwh: float = Field(default=0.0, ge=0, description="kWh.")
    emissions_kg: float = Field(default=0.0, ge=0, description="kg CO2e.")
    count: int = Field(default=0, ge=0, description="How many operations are counted.")
    method: CarbonMethod = Field(
        default=CarbonMethod.ESTIMATED,
        description="measured when every counted operation was measured, else estimated.",
    )

    def plus(self, other: OperationCarbon) -> OperationCarbon:
        """Both counted together (an empty side, count 0, takes the other's method)."""
        methods = {c.method for c in (self, other) if c.count}
        measured = methods == {CarbonMethod.MEASURED}
        return OperationCarbon(
            energy_kwh=self.energy_kwh + other.energy_kwh,
            emissions_kg=self.emissions_kg + other.emissions_kg,
            count=self.count + other.count,
            method=CarbonMethod.MEASURED if measured else CarbonMethod.ESTIMATED,
        )


class Retention(StrEnum):
    """What happens to the artifact's files when the ModelVersion is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class Stage(StrEnum):
    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"


class Evaluation(ApiModel):
    """An evaluation of this version on a held-out dataset (``mg eval``, or the FineTuneJob's
    spec.evaluation at the end of training); the full report, with the sample generations, is
    ``report`` (eval.json)."""

    dataset: str = Field(description="The dataset, as it was named.")
    loss: float = Field(ge=0, description="Mean token cross-entropy on it, nats.")
    perplexity: float = Field(ge=1, description="exp(loss).")
    examples: int = Field(ge=0, description="Examples scored.")
    tokens: int = Field(ge=0, description="Tokens that carried loss.")
    evaluated_at: datetime = Field(description="When the evaluation ended.")
    energy_kwh: float = Field(default=0.0, ge=0, description="Energy of the evaluation, kWh.")
    emissions_kg: float = Field(default=0.0, ge=0, description="Its emissions, kg CO2e.")
    method: CarbonMethod = Field(
        default=CarbonMethod.ESTIMATED, description="measured or estimated."
    )
    report: str | None = Field(default=None, description="Where the full report (eval.json) is.")


def evaluation_card_lines(ev: Evaluation) -> list[str]:
    """A model card's "Evaluation" section for a version's status.evaluation (the exported
    card and the dashboard's card say the same)."""
    carbon = f"; {ev.emissions_kg * 1000:.6g} g CO2e, {ev.method}" if ev.energy_kwh else ""
    return [
        "## Evaluation",
        "",
        f"On `{ev.dataset}` ({ev.examples} examples, {ev.tokens} tokens scored): loss "
        f"{ev.loss:.4f}, perplexity {ev.perplexity:.4f} ({ev.evaluated_at:%Y-%m-%d}{carbon}).",
        "",
    ]


class TrainedEvaluation(ApiModel):
    """The FineTuneJob's spec.evaluation at the end of training, as the version keeps it
    (decimal strings: spec has no floats); the reconciler turns it into status.evaluation."""

    dataset: str = Field(description="The dataset scored: a URI, or the job's eval split.")
    loss: str = Field(pattern=DECIMAL_PATTERN, description="Mean token cross-entropy, nats.")
    perplexity: str = Field(pattern=DECIMAL_PATTERN, description="exp(loss).")
    examples: int = Field(ge=0, description="Examples scored.")
    tokens: int = Field(ge=0, description="Tokens that carried loss.")
    evaluated_at: datetime = Field(description="When the evaluation ended.")
    report: str | None = Field(default=None, description="Where the full report (eval.json) is.")

    def to_status(self) -> Evaluation:
        """status.evaluation (its energy is part of trainingCarbon, so none is counted here)."""
        return Evaluation(
            dataset=self.dataset,
            loss=float(self.loss),
            perplexity=max(float(self.perplexity), 1.0),
            examples=self.examples,
            tokens=self.tokens,
            evaluated_at=self.evaluated_at,
            report=self.report,
        )


class ModelVersionSpec(ApiModel):
    """Desired state of a ModelVersion; immutable except ``stage``."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": " && ".join(
                        f"(has(self.{f}) == has(oldSelf.{f})"
                        f" && (!has(self.{f}) || self.{f} == oldSelf.{f}))"
                        for f in IMMUTABLE_FIELDS
                    ),
                    "message": "spec is immutable except stage; create a new ModelVersion",
                }
            ]
        }
    )

    model: str = Field(
        pattern=DNS_LABEL,
        max_length=MODEL_NAME_MAX,
        description="Model name, e.g. support-bot (a DNS-1123 label of at most 50 characters).",
    )
    version: int = Field(
        ge=1, le=VERSION_MAX, description="Integer version, unique per model (at most 9 digits)."
    )
    artifact: Artifact = Field(description="The weights.")
    source: Source = Field(default_factory=Source, description="Lineage.")
    metrics: dict[str, str] = Field(
        default_factory=dict, description="Final metrics (eval_loss, …) as decimal strings."
    )
    training_carbon: TrainingCarbon | None = Field(default=None, description="Training carbon.")
    evaluation: TrainedEvaluation | None = Field(
        default=None,
        description=(
            "The evaluation at the end of training (FineTuneJob spec.evaluation); the first"
            " status.evaluation, until an mg eval replaces it."
        ),
    )
    stage: Stage = Field(default=Stage.NONE, description="none, staging or production.")
    retention: Retention = Field(
        default=Retention.RETAIN,
        description=(
            "On deletion, Retain leaves the artifact's files; Delete removes them (a cleanup Job"
            " deletes the folder on its claim or the objects under its s3:// prefix) before the"
            " version goes. hf:// artifacts are only cached, so nothing is deleted. May change."
        ),
    )
    storage_secret: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=SUBDOMAIN_MAX,
        description=(
            "Secret with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and optionally"
            " AWS_ENDPOINT_URL, AWS_DEFAULT_REGION) for an s3:// artifact, given to the pods that"
            " read it as env; for hf://, a key HF_TOKEN is used for gated models. May change."
        ),
    )


class ServingShare(ApiModel):
    """One InferenceDeployment's serving totals for this version (its status.carbon.byModelVersion)."""

    deployment: str = Field(description="InferenceDeployment name.")
    uid: str = Field(min_length=1, description="Its uid (a recreated deployment is a new entry).")
    energy_kwh: float = Field(default=0.0, ge=0, description="Energy, kWh.")
    emissions_kg: float = Field(default=0.0, ge=0, description="Emissions, kg CO2e.")
    tokens: int = Field(default=0, ge=0, description="Prompt plus generated tokens served.")


class ModelVersionStatus(ApiModel):
    """Observed state of a ModelVersion."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    conditions: Conditions = Field(
        default_factory=list, description="Ready once the artifact is verified."
    )
    size_bytes: int | None = Field(default=None, description="Verified size of the artifact.")
    digest: str | None = Field(default=None, description="Verified sha256 of the artifact.")
    serving_deployments: list[str] = Field(
        default_factory=list, description="InferenceDeployments serving this version."
    )
    training_emissions_kg: float | None = Field(
        default=None, description="kg CO2e of the training run."
    )
    serving_emissions_kg: float | None = Field(
        default=None, description="kg CO2e of serving it, all deployments together."
    )
    serving_energy_kwh: float | None = Field(
        default=None, description="kWh of serving it, all deployments together."
    )
    serving_by_deployment: Annotated[list[ServingShare], ListMap("uid")] = Field(
        default_factory=list,
        description=(
            "What each InferenceDeployment (deleted ones included) attributed to this version;"
            " the serving totals are their sums."
        ),
    )
    carbon_by_operation: dict[str, OperationCarbon] = Field(
        default_factory=dict,
        description=(
            "Energy and emissions by kind of operation: training, verification, export,"
            " evaluation, batch, serving."
        ),
    )
    lifetime_emissions_kg: float | None = Field(
        default=None,
        description="Every operation's emissions together (carbonByOperation), kg CO2e.",
    )
    tokens_served: int = Field(
        default=0, ge=0, description="Tokens served by every deployment of it (deleted ones too)."
    )
    lifetime_grams_per_1k_tokens: float | None = Field(
        default=None,
        ge=0,
        description=(
            "The whole life amortised over what it served: lifetimeEmissionsKg x 1e6 /"
            " tokensServed (training, verification, exports… included; none before a token)."
        ),
    )
    lifetime_emissions: str | None = Field(
        default=None,
        max_length=32,
        description="lifetimeEmissionsKg for people, e.g. '3.4 g' (display.format_emissions).",
    )
    evaluation: Evaluation | None = Field(
        default=None, description="The latest evaluation on a held-out dataset (mg eval)."
    )


def version_name(model: str, version: int) -> str:
    """The name a ModelVersion must have: ``<model>-v<N>``."""
    return f"{model}-v{version}"


class ModelVersion(ApiModel):
    """One version of a model."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.metadata.name == self.spec.model + '-v' + string(self.spec.version)",
                    "message": "metadata.name must be <spec.model>-v<spec.version>",
                }
            ]
        },
    )

    api_version: Literal["modelgarden.dev/v1alpha1"] = "modelgarden.dev/v1alpha1"
    kind: Literal["ModelVersion"] = "ModelVersion"
    metadata: LabelNamedMeta
    spec: ModelVersionSpec
    status: ModelVersionStatus = Field(default_factory=ModelVersionStatus)

    @model_validator(mode="after")
    def _name_matches(self) -> ModelVersion:
        expected = version_name(self.spec.model, self.spec.version)
        if self.metadata.name != expected:
            raise ValueError(
                f"metadata.name must be {expected!r} (<spec.model>-v<spec.version>),"
                f" got {self.metadata.name!r}"
            )
        return self
