"""Operator settings, read from ``MODEL_GARDEN_OPERATOR_*`` environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model_garden.api.common import Toleration
from model_garden.api.inferencedeployment import GatewayRef, NetworkPeer
from model_garden.carbon.grid import ProviderConfig

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
    namespace_budgets_kg: dict[str, float] = Field(
        default_factory=dict,
        description="Carbon budget (kg CO2e) of each namespace's FineTuneJobs together.",
    )
    experiment_budgets_kg: dict[str, float] = Field(
        default_factory=dict,
        description="Carbon budget (kg CO2e) of each experiment label's FineTuneJobs together.",
    )
    budget_action: Literal["wait", "refuse"] = Field(
        default="wait",
        description="A new job once a namespace or experiment budget is spent: wait, or refuse.",
    )
    grid_overrides: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Grid intensities (g CO2e/kWh) by cloud region (aws:eu-west-3), region or country"
            " (FRA) that win over the tables: the chart's carbon.gridOverrides, as JSON."
        ),
    )
    grid_provider: ProviderConfig | None = Field(
        default=None,
        description=(
            "A live grid-intensity provider (the chart's carbon.provider, as JSON; its"
            " credentials are files from a Secret): carbon-aware scheduling reads it."
        ),
    )
    carbon_max_deferral_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="A job deferred for the grid starts after this long when its window sets no notAfter.",
    )
    carbon_max_pause_seconds: float = Field(
        default=86400.0,
        ge=0,
        description="A job paused for the grid resumes once paused this long in all.",
    )
    carbon_kepler_prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://.+",
        description=(
            "Prometheus holding Kepler's per-pod series (the chart's carbon.kepler.prometheusUrl):"
            " a finished trainer's CPU and DRAM energy are read there instead of estimated."
        ),
    )
    carbon_kepler_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Bound on one query to that Prometheus."
    )
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
    api_port: int = Field(
        default=8000, description="Port vLLM's OpenAI-compatible server listens on in a pod."
    )
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
    api_connect_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Bound on connecting to the API server, per executor call.",
    )
    api_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Bound on waiting for the API server's answer, per executor call.",
    )
    policy_namespace: str = Field(
        default="model-garden-system",
        description="Namespace of the admin policy ConfigMap (the operator's namespace).",
    )
    policy_config_map: str = Field(
        default="model-garden-policy",
        description="Name of the admin policy ConfigMap; absent: the documented default policy.",
    )
    policy_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="The policy ConfigMap is re-read at most this often (0: at every reconcile).",
    )
    operator_namespace: str = Field(
        default="model-garden-system",
        description="Where the operator's pods run (NetworkPolicies let them reach the meter).",
    )
    operator_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "model-garden-operator"},
        description="Labels of the operator's pods (NetworkPolicies let them reach the meter).",
    )
    tmp_size_limit: str = Field(
        default="4Gi",
        pattern=r"^[0-9]+(\.[0-9]+)?(k|Ki|M|Mi|G|Gi|T|Ti)?$",
        description="sizeLimit of the /tmp emptyDir of every pod.",
    )
    cache_size_limit: str = Field(
        default="100Gi",
        pattern=r"^[0-9]+(\.[0-9]+)?(k|Ki|M|Mi|G|Gi|T|Ti)?$",
        description="sizeLimit of the cache emptyDir (Hub downloads of base models land there).",
    )
    ephemeral_storage_request: str = Field(
        default="10Gi",
        pattern=r"^[0-9]+(\.[0-9]+)?(k|Ki|M|Mi|G|Gi|T|Ti)?$",
        description="ephemeral-storage every pod requests (the scheduler places it where it fits).",
    )
    gpu_node_selector: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "nodeSelector of GPU pods whose spec sets none (JSON object; the chart's"
            " gpu.nodeSelector). Empty: none."
        ),
    )
    gpu_tolerations: list[Toleration] = Field(
        default_factory=list,
        description=(
            "Tolerations of GPU pods whose spec sets none (JSON list of core/v1 Tolerations;"
            " the chart's gpu.tolerations). Empty: none."
        ),
    )
    metrics_scraper_peers: list[NetworkPeer] = Field(
        default_factory=list,
        description=(
            "Peers (JSON list of namespaceSelector/podSelector) admitted to the meter port of"
            " every InferenceDeployment's NetworkPolicy besides the operator, e.g. Prometheus."
            " Empty: only the operator."
        ),
    )
    metrics_port: int = Field(default=8080, description="Prometheus /metrics; 0 disables it.")
    health_port: int = Field(default=8081, description="kopf liveness /healthz; 0 disables it.")
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty: cluster-wide."
    )
    autoscaling_prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://.+",
        description=(
            "Prometheus that KEDA's prometheus trigger queries for vLLM's series (the chart's"
            " autoscaling.prometheusUrl); unset: KEDA cannot autoscale, AutoscalingReady says so."
        ),
    )
    keda_http_scaler_address: str = Field(
        default="keda-add-ons-http-external-scaler.keda:9090",
        description="The KEDA HTTP add-on's external scaler (host:port) for wake-up on request.",
    )
    traffic_gateway: GatewayRef | None = Field(
        default=None,
        description=(
            "The Gateway HTTPRoutes of spec.traffic attach to when the spec names none (JSON"
            " {name, namespace, sectionName}; the chart's traffic.gateway). Unset: replica-weighted."
        ),
    )
    discovery_seconds: float = Field(
        default=60.0,
        ge=0,
        description=(
            "Which autoscalers and Gateway API are installed is re-discovered at most this often"
            " (0: at every reconcile)."
        ),
    )
