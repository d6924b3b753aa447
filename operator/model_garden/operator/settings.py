"""Operator settings, read from ``MODEL_GARDEN_OPERATOR_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

TRAINER_SIGTERM_GRACE_SECONDS = 60
"""The trainer exits within this bound after SIGTERM (model_garden.training.run.SIGTERM_EXIT_BOUND_SECONDS)."""


class OperatorSettings(BaseSettings):
    """What a cluster admin tunes; every field has a safe default."""

    model_config = SettingsConfigDict(env_prefix="MODEL_GARDEN_OPERATOR_", extra="ignore")

    trainer_image: str = Field(
        default="ghcr.io/model-garden/trainer:0.1.0", description="Image of FineTuneJob pods."
    )
    server_image: str = Field(
        default="ghcr.io/model-garden/server:0.1.0",
        description="Image of InferenceDeployment pods (serving launcher + vLLM + meter).",
    )
    verify_image: str | None = Field(
        default=None, description="Image of ModelVersion verification Jobs; default: trainer."
    )
    default_country: str = Field(
        default="USA", pattern=r"^[A-Z]{3}$", description="ISO alpha-3 country of the cluster."
    )
    default_region: str | None = None
    max_running_per_namespace: int = Field(
        default=4,
        ge=0,
        description="FineTuneJobs without a Kueue queue allowed to run at once per namespace (0: no cap).",
    )
    trainer_cpu: str = Field(default="2", description="CPU request/limit when spec omits it.")
    trainer_memory: str = Field(
        default="8Gi", description="Memory request/limit when spec omits it."
    )
    server_cpu: str = "2"
    server_memory: str = "16Gi"
    verify_cpu: str = "500m"
    verify_memory: str = "512Mi"
    trainer_service_account: str | None = Field(
        default=None, description="ServiceAccount of trainer pods; default: the namespace's."
    )
    progress_port: int = Field(default=8090, description="Port the trainer serves /progress on.")
    meter_port: int = Field(default=9400, description="Port the serving meter listens on.")
    meter_path: str = Field(default="/carbon", description="Meter path returning ServingCarbon.")
    progress_poll_seconds: float = Field(default=15.0, gt=0)
    meter_poll_seconds: float = Field(default=30.0, gt=0)
    resync_seconds: float = Field(
        default=60.0, gt=0, description="Level-based re-reconcile of every resource."
    )
    stuck_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A pod unschedulable or failing to pull its image this long fails the job.",
    )
    http_timeout_seconds: float = 3.0
    metrics_port: int = Field(default=8080, description="Prometheus /metrics; 0 disables it.")
    health_port: int = Field(default=8081, description="kopf liveness /healthz; 0 disables it.")
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty: cluster-wide."
    )
