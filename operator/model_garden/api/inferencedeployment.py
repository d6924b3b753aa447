"""InferenceDeployment: serve a ModelVersion (plus LoRA adapters) behind an OpenAI-compatible API."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from .common import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    ApiModel,
    CarbonMethod,
    Condition,
    ObjectMeta,
    PositiveDecimal,
    Resources,
    SecretKeyRef,
)
from .modelversion import Stage


class Dtype(StrEnum):
    AUTO = "auto"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT32 = "float32"


class Quantization(StrEnum):
    NONE = "none"
    AWQ = "awq"
    GPTQ = "gptq"
    FP8 = "fp8"
    BITSANDBYTES = "bitsandbytes"


class Engine(ApiModel):
    """vLLM settings; the serving launcher turns them into vLLM's command line."""

    image: str | None = Field(default=None, description="Server image override.")
    max_model_len: int | None = Field(default=None, ge=16, description="Context length cap.")
    dtype: Dtype = Field(default=Dtype.AUTO, description="Weights and activations dtype.")
    gpu_memory_utilization: PositiveDecimal = Field(
        default="0.9", description="Share of GPU memory vLLM may take, e.g. '0.9'."
    )
    tensor_parallel_size: int = Field(default=1, ge=1, le=64, description="GPUs per replica.")
    quantization: Quantization = Field(
        default=Quantization.NONE, description="Weight quantization the checkpoint uses."
    )
    max_lora_rank: int = Field(default=16, ge=1, le=512, description="Largest adapter rank.")
    max_loras: int = Field(default=4, ge=1, le=256, description="Adapters resident at once.")
    extra_args: list[str] = Field(default_factory=list, description="Passed to vLLM verbatim.")


class Adapter(ApiModel):
    """A LoRA adapter served on the same base model, addressed by ``name``."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Model name clients use."
    )
    model_version: str = Field(pattern=DNS_SUBDOMAIN, description="An adapter ModelVersion.")


class InferenceCarbonSettings(ApiModel):
    """Where the serving energy is drawn (for the grid intensity)."""

    country: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="ISO alpha-3.")
    region: str | None = Field(default=None, max_length=64, description="Sub-national region.")


class InferenceDeploymentSpec(ApiModel):
    """Desired state of an InferenceDeployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.modelVersion) != (has(self.model) && has(self.stage))",
                    "message": "set modelVersion, or model and stage (to follow promotions)",
                },
                {
                    "rule": "has(self.model) == has(self.stage)",
                    "message": "model and stage go together",
                },
            ]
        }
    )

    model_version: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN, description="The ModelVersion to serve."
    )
    model: str | None = Field(
        default=None, pattern=DNS_LABEL, description="Follow this model's version at `stage`."
    )
    stage: Stage | None = Field(default=None, description="staging or production.")
    adapters: list[Adapter] = Field(
        default_factory=list, description="LoRA adapters served beside the base (multi-LoRA)."
    )
    replicas: int = Field(default=1, ge=0, le=1000, description="Server pods.")
    engine: Engine = Field(default_factory=Engine, description="vLLM settings.")
    resources: Resources = Field(default_factory=Resources, description="Server pod compute.")
    served_model_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="Name clients use; default: the model name, stable across versions.",
    )
    api_key_secret: SecretKeyRef | None = Field(
        default=None, description="Secret holding the API key clients must send (Bearer)."
    )
    carbon: InferenceCarbonSettings = Field(default_factory=InferenceCarbonSettings)

    @model_validator(mode="after")
    def _one_source(self) -> InferenceDeploymentSpec:
        if (self.model is None) != (self.stage is None):
            raise ValueError("spec.model and spec.stage go together")
        if (self.model_version is None) == (self.model is None):
            raise ValueError("set spec.modelVersion, or spec.model and spec.stage (not both)")
        if self.stage == Stage.NONE:
            raise ValueError("spec.stage must be staging or production to follow promotions")
        names = [a.name for a in self.adapters]
        if len(set(names)) != len(names):
            raise ValueError("spec.adapters: adapter names must be unique")
        return self


class ServingCarbonStatus(ApiModel):
    """Carbon of serving, summed over the deployment's pods since it was created."""

    energy_kwh: float = Field(default=0.0, description="Energy, kWh.")
    emissions_kg: float = Field(default=0.0, description="Emissions, kg CO2e.")
    tokens: int = Field(default=0, description="Prompt plus generated tokens served.")
    g_per_1k_tokens: float | None = Field(
        default=None, alias="gPer1kTokens", description="g CO2e per 1000 tokens (recent window)."
    )
    method: CarbonMethod = Field(
        default=CarbonMethod.ESTIMATED, description="measured or estimated."
    )
    grid_intensity_g_per_kwh: float | None = Field(default=None, description="g CO2e per kWh used.")
    region: str | None = Field(default=None, description="Grid country/region used.")


class InferenceDeploymentStatus(ApiModel):
    """Observed state of an InferenceDeployment."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Progressing (and ReplicasLimited)."
    )
    endpoint: str | None = Field(default=None, description="OpenAI base URL, …/v1.")
    model_version: str | None = Field(default=None, description="The version being served.")
    replicas: int = Field(default=0, description="Server pods that exist.")
    ready_replicas: int = Field(default=0, description="Server pods ready to answer.")
    selector: str | None = Field(default=None, description="Pod label selector (/scale).")
    served_models: list[str] = Field(
        default_factory=list, description="Model names clients can call (base and adapters)."
    )
    carbon: ServingCarbonStatus | None = Field(default=None, description="Serving carbon.")


class InferenceDeployment(ApiModel):
    """A served model."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["modelgarden.dev/v1alpha1"] = "modelgarden.dev/v1alpha1"
    kind: Literal["InferenceDeployment"] = "InferenceDeployment"
    metadata: ObjectMeta
    spec: InferenceDeploymentSpec
    status: InferenceDeploymentStatus = Field(default_factory=InferenceDeploymentStatus)
