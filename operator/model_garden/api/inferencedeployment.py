"""InferenceDeployment: serve a ModelVersion (plus LoRA adapters) behind an OpenAI-compatible API."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from .common import (
    MAX_STATUS_RECOMMENDATIONS,
    ApiModel,
    CarbonMethod,
    Conditions,
    RecommendationBrief,
    Resources,
    SecretKeyRef,
    ServiceNamedMeta,
)
from .fields import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    LABEL_MAX,
    LABEL_VALUE_PATTERN,
    SUBDOMAIN_MAX,
    ClaimUri,
    ListMap,
    UnitFraction,
)
from .modelversion import MODEL_NAME_MAX, Stage


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
    gpu_memory_utilization: UnitFraction = Field(
        default="0.9", description="Share of GPU memory vLLM may take, in (0, 1], e.g. '0.9'."
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
    model_version: str = Field(
        pattern=DNS_LABEL, max_length=LABEL_MAX, description="An adapter ModelVersion."
    )


class InferenceCarbonSettings(ApiModel):
    """Where the serving energy is drawn (for the grid intensity)."""

    country: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="ISO alpha-3.")
    region: str | None = Field(default=None, max_length=64, description="Sub-national region.")


LabelValue = Annotated[str, Field(pattern=LABEL_VALUE_PATTERN, max_length=LABEL_MAX)]


class LabelSelector(ApiModel):
    """Objects whose labels include all of ``matchLabels`` (an empty selector selects all)."""

    match_labels: dict[str, LabelValue] = Field(
        default_factory=dict, description="Label key -> value; all must match."
    )


PEER_NEEDS_A_SELECTOR = "set namespaceSelector, podSelector or both"


class NetworkPeer(ApiModel):
    """Pods allowed to reach the endpoint (as in a NetworkPolicy ``from`` entry).

    namespaceSelector alone: every pod of the matching namespaces; podSelector alone: matching
    pods of this namespace; both: matching pods of the matching namespaces.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.namespaceSelector) || has(self.podSelector)",
                    "message": PEER_NEEDS_A_SELECTOR,
                }
            ]
        }
    )

    namespace_selector: LabelSelector | None = Field(
        default=None, description="Namespaces whose pods may connect ({} = all namespaces)."
    )
    pod_selector: LabelSelector | None = Field(
        default=None, description="Pods that may connect ({} = all pods of those namespaces)."
    )

    @model_validator(mode="after")
    def _some_selector(self) -> NetworkPeer:
        if self.namespace_selector is None and self.pod_selector is None:
            raise ValueError(PEER_NEEDS_A_SELECTOR)
        return self


class NetworkPolicySettings(ApiModel):
    """The NetworkPolicy shipped with the deployment (ingress to its server pods)."""

    enabled: bool = Field(
        default=True, description="Ship a NetworkPolicy; false leaves the pods open to all."
    )
    allow_from: list[NetworkPeer] = Field(
        default_factory=list,
        max_length=64,
        description=(
            "Who may reach the endpoint (the API port); empty = pods in the same namespace."
            " The meter port admits only the operator's pods, whatever this says."
        ),
    )


class AutoscalingMetric(StrEnum):
    """vLLM's load signals an autoscaler can follow (its Prometheus gauges)."""

    WAITING_REQUESTS = "waitingRequests"
    """``vllm:num_requests_waiting``: requests queued for lack of batch room, per replica."""
    KV_CACHE_USAGE = "kvCacheUsage"
    """``vllm:kv_cache_usage_perc``: the share of the KV cache in use, averaged over replicas."""


class AutoscalingTarget(ApiModel):
    """The load each replica should carry; the autoscaler adds replicas above it."""

    metric: AutoscalingMetric = Field(
        default=AutoscalingMetric.WAITING_REQUESTS,
        description="waitingRequests (per replica) or kvCacheUsage (mean percent, 1-100).",
    )
    value: int = Field(
        default=4,
        ge=1,
        le=10000,
        description=(
            "waitingRequests: queued requests per replica (e.g. 4); kvCacheUsage: the mean"
            " percent of the KV cache in use, 1-100 (e.g. 80). Integers: Kubernetes API"
            " conventions keep floats out of specs."
        ),
    )

    @model_validator(mode="after")
    def _percent(self) -> AutoscalingTarget:
        if self.metric == AutoscalingMetric.KV_CACHE_USAGE and self.value > 100:
            raise ValueError(
                f"spec.autoscaling.target.value: kvCacheUsage is a percent in 1..100, got"
                f" {self.value}"
            )
        return self

    @property
    def threshold(self) -> str:
        """The value the autoscaler compares vLLM's gauge with (kv_cache_usage_perc is 0-1)."""
        if self.metric == AutoscalingMetric.KV_CACHE_USAGE:
            return f"{self.value / 100:g}"
        return str(self.value)


DURATION_PATTERN = r"^[0-9]{1,6}(s|m|h)$"


def duration_seconds(text: str) -> int:
    """``30s``, ``5m``, ``2h`` in seconds (the pattern above guarantees the form)."""
    return int(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


class Autoscaling(ApiModel):
    """Replicas follow vLLM's load between min and max (KEDA or an HPA renders it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must not exceed maxReplicas",
                }
            ]
        }
    )

    min_replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Fewest replicas; 0 scales to zero when idle (needs KEDA's HTTP add-on).",
    )
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas.")
    target: AutoscalingTarget = Field(
        default_factory=AutoscalingTarget, description="The load per replica to keep."
    )
    scale_to_zero_after: str = Field(
        default="5m",
        pattern=DURATION_PATTERN,
        description="Idle time before scaling to zero (minReplicas 0), e.g. 30s, 5m, 1h.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"spec.autoscaling.minReplicas ({self.min_replicas}) must not exceed"
                f" maxReplicas ({self.max_replicas})"
            )
        return self


REPLICAS_WITH_AUTOSCALING = (
    "spec.replicas must be at most 1 with spec.autoscaling: the autoscaler sets the replicas"
    " between autoscaling.minReplicas and maxReplicas; remove spec.replicas"
)


class TrafficTarget(ApiModel):
    """One ModelVersion of a split and its share of the requests, in percent."""

    model_version: str = Field(
        pattern=DNS_LABEL, max_length=LABEL_MAX, description="A Ready ModelVersion to serve."
    )
    weight: int = Field(
        ge=0, le=100, description="Percent of requests (the weights add up to 100)."
    )


class GatewayRef(ApiModel):
    """The Gateway (Gateway API) the HTTPRoute attaches to: an HTTPRoute parentRef."""

    name: str = Field(pattern=DNS_LABEL, max_length=LABEL_MAX, description="Gateway name.")
    namespace: str | None = Field(
        default=None, pattern=DNS_LABEL, max_length=LABEL_MAX, description="Default: this one."
    )
    section_name: str | None = Field(
        default=None, pattern=DNS_LABEL, max_length=LABEL_MAX, description="Listener name."
    )


class Rollout(ApiModel):
    """How a traffic split is rolled out and rolled back."""

    progress_deadline_seconds: int = Field(
        default=600,
        ge=10,
        le=86400,
        description=(
            "A version whose Deployment is not Ready within this long is rolled back: its"
            " traffic goes to the other version (the spec is kept; status says so)."
        ),
    )
    gateway: GatewayRef | None = Field(
        default=None,
        description="The Gateway of the HTTPRoute; default: the chart's traffic.gateway.",
    )


TRAFFIC_SUMS_TO_100 = "spec.traffic: the weights must add up to 100"
TRAFFIC_NOT_WITH_AUTOSCALING = (
    "spec.traffic and spec.autoscaling cannot be set together yet: a split sets each version's"
    " replicas by weight; autoscale after promotion (one version left)"
)


DYNAMIC_ADAPTERS_NEED_A_KEY = (
    "spec.dynamicAdapters: true requires spec.apiKeySecret: runtime adapter loading must be"
    " authenticated"
)


class InferenceDeploymentSpec(ApiModel):
    """Desired state of an InferenceDeployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.traffic)"
                    " ? !has(self.modelVersion) && !has(self.model)"
                    " : has(self.modelVersion) != (has(self.model) && has(self.stage))",
                    "message": "set modelVersion, or model and stage (to follow promotions),"
                    " or traffic",
                },
                {
                    "rule": "!has(self.traffic)"
                    " || (size(self.traffic) == 1 ? self.traffic[0].weight == 100"
                    " : self.traffic[0].weight + self.traffic[1].weight == 100)",
                    "message": TRAFFIC_SUMS_TO_100,
                },
                {
                    "rule": "!has(self.traffic) || !has(self.autoscaling)",
                    "message": TRAFFIC_NOT_WITH_AUTOSCALING,
                },
                {
                    "rule": "has(self.model) == has(self.stage)",
                    "message": "model and stage go together",
                },
                {
                    "rule": "!(has(self.dynamicAdapters) && self.dynamicAdapters)"
                    " || has(self.apiKeySecret)",
                    "message": DYNAMIC_ADAPTERS_NEED_A_KEY,
                },
                {
                    "rule": "!has(self.autoscaling) || !has(self.replicas) || self.replicas <= 1",
                    "message": REPLICAS_WITH_AUTOSCALING,
                },
            ]
        }
    )

    model_version: str | None = Field(
        default=None,
        pattern=DNS_LABEL,
        max_length=LABEL_MAX,
        description="The ModelVersion to serve.",
    )
    model: str | None = Field(
        default=None,
        pattern=DNS_LABEL,
        max_length=MODEL_NAME_MAX,
        description="Follow this model's version at `stage`.",
    )
    stage: Stage | None = Field(default=None, description="staging or production.")
    traffic: Annotated[list[TrafficTarget], ListMap("model_version")] | None = Field(
        default=None,
        min_length=1,
        max_length=2,
        description=(
            "Split requests between two ModelVersions of the model (canary, blue-green)"
            " instead of modelVersion; weights add up to 100. Promote: set the new one to 100"
            " or remove the old entry."
        ),
    )
    rollout: Rollout = Field(
        default_factory=Rollout, description="Roll-out deadline and Gateway of spec.traffic."
    )
    adapters: Annotated[list[Adapter], ListMap("name")] = Field(
        default_factory=list,
        description="LoRA adapters served beside the base (multi-LoRA); names are unique.",
    )
    dynamic_adapters: bool = Field(
        default=False,
        description=(
            "Let clients load and unload adapters at run time (vLLM's runtime LoRA updating);"
            " requires apiKeySecret. When false only the listed adapters are served and a change"
            " to the list rolls the pods."
        ),
    )
    replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Server pods (a fixed count; with spec.autoscaling leave it unset).",
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description=(
            "Follow vLLM's load between min and max replicas (KEDA ScaledObject, else an HPA on"
            " external metrics; condition AutoscalingReady says which)."
        ),
    )
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
    storage_secret: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=SUBDOMAIN_MAX,
        description=(
            "Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (optionally"
            " AWS_ENDPOINT_URL, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION, HF_TOKEN) for s3:// and"
            " gated hf:// artifacts, fed to the server as env; none: the pod's own identity."
        ),
    )
    model_cache: ClaimUri | None = Field(
        default=None,
        description=(
            "A folder on a PersistentVolumeClaim (pvc://<claim>/<path>) where the server pods"
            " download s3:// and hf:// models, kept across replicas and restarts: a new pod"
            " finds the files there instead of downloading them again. A ReadWriteMany claim"
            " serves every replica; a ReadWriteOnce one limits them to 1. Unset: each pod"
            " downloads into its own emptyDir."
        ),
    )
    carbon: InferenceCarbonSettings = Field(default_factory=InferenceCarbonSettings)
    network_policy: NetworkPolicySettings = Field(
        default_factory=NetworkPolicySettings,
        description="The NetworkPolicy shipped with the deployment: who may reach the endpoint.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> InferenceDeploymentSpec:
        if (self.model is None) != (self.stage is None):
            raise ValueError("spec.model and spec.stage go together")
        if self.traffic:
            self._check_traffic()
        elif (self.model_version is None) == (self.model is None):
            raise ValueError(
                "set spec.modelVersion, or spec.model and spec.stage (not both), or spec.traffic"
            )
        if self.stage == Stage.NONE:
            raise ValueError("spec.stage must be staging or production to follow promotions")
        if self.dynamic_adapters and self.api_key_secret is None:
            raise ValueError(DYNAMIC_ADAPTERS_NEED_A_KEY)
        if self.autoscaling is not None and self.replicas > 1:
            raise ValueError(REPLICAS_WITH_AUTOSCALING)
        return self

    def _check_traffic(self) -> None:
        if self.model_version is not None or self.model is not None:
            raise ValueError(
                "spec.traffic names the versions: leave spec.modelVersion, spec.model and"
                " spec.stage unset"
            )
        total = sum(t.weight for t in self.traffic or [])
        if total != 100:
            raise ValueError(f"{TRAFFIC_SUMS_TO_100} (they add up to {total})")
        if self.autoscaling is not None:
            raise ValueError(TRAFFIC_NOT_WITH_AUTOSCALING)


class PodCarbonBaseline(ApiModel):
    """The last meter reading of one server pod already counted into the totals.

    The next reading counts only what it adds to this one, so totals add up across operator
    restarts and missed polls; a reading below its baseline means the pod's meter restarted.
    """

    uid: str = Field(min_length=1, description="Pod uid.")
    energy_joules: float = Field(default=0.0, ge=0, description="Energy, J.")
    active_energy_joules: float = Field(default=0.0, ge=0, description="Energy while serving, J.")
    idle_energy_joules: float = Field(default=0.0, ge=0, description="Energy while idle, J.")
    emissions_grams: float = Field(default=0.0, ge=0, description="Emissions, g CO2e.")
    active_emissions_grams: float = Field(
        default=0.0, ge=0, description="Emissions while serving, g CO2e."
    )
    idle_emissions_grams: float = Field(
        default=0.0, ge=0, description="Emissions while idle, g CO2e."
    )
    tokens: int = Field(default=0, ge=0, description="Prompt plus generated tokens.")
    by_adapter: Annotated[list[AdapterCarbonBaseline], ListMap("adapter")] | None = Field(
        default=None, description="Per adapter (absent: a meter or status before adapters)."
    )
    unattributed_energy_joules: float | None = Field(
        default=None, ge=0, description="Ticks that mixed adapters: active energy, J."
    )
    unattributed_emissions_grams: float | None = Field(
        default=None, ge=0, description="Ticks that mixed adapters: emissions, g CO2e."
    )
    unattributed_tokens: int | None = Field(
        default=None, ge=0, description="Ticks that mixed adapters: tokens."
    )


class AdapterCarbonBaseline(ApiModel):
    """One adapter's figures in a pod's last meter reading already counted."""

    adapter: str = Field(
        min_length=1, description="Adapter name (the base model under its served name)."
    )
    energy_joules: float = Field(default=0.0, ge=0, description="Active energy, J.")
    emissions_grams: float = Field(default=0.0, ge=0, description="Active emissions, g CO2e.")
    tokens: int = Field(default=0, ge=0, description="Prompt plus generated tokens.")


class AdapterShare(ApiModel):
    """What this deployment served through one adapter (or the base model): the meters' ticks
    in which vLLM listed that adapter alone (docs/carbon.md, "Per adapter")."""

    adapter: str = Field(
        min_length=1, description="Adapter name (the base model under its served name)."
    )
    model_version: str | None = Field(
        default=None, description="Its ModelVersion (none: an adapter loaded at run time)."
    )
    energy_kwh: float = Field(default=0.0, ge=0, description="Active energy, kWh.")
    emissions_kg: float = Field(default=0.0, ge=0, description="Active emissions, kg CO2e.")
    tokens: int = Field(default=0, ge=0, description="Prompt plus generated tokens served.")


class ModelVersionShare(ApiModel):
    """What this deployment attributed to one ModelVersion it served."""

    model_version: str = Field(min_length=1, description="ModelVersion name.")
    energy_kwh: float = Field(default=0.0, ge=0, description="Energy, kWh.")
    emissions_kg: float = Field(default=0.0, ge=0, description="Emissions, kg CO2e.")
    tokens: int = Field(default=0, ge=0, description="Prompt plus generated tokens served.")


class ServingCarbonStatus(ApiModel):
    """Carbon of serving: cumulative over all replicas since creation, plus a recent window."""

    energy_kwh: float = Field(default=0.0, ge=0, description="Energy, kWh (active + idle).")
    active_energy_kwh: float = Field(
        default=0.0, ge=0, description="Energy while requests were running, kWh."
    )
    idle_energy_kwh: float = Field(default=0.0, ge=0, description="Energy while idle, kWh.")
    emissions_kg: float = Field(
        default=0.0, ge=0, description="Emissions, kg CO2e (active + idle)."
    )
    active_emissions_kg: float = Field(
        default=0.0, ge=0, description="Emissions while requests were running, kg CO2e."
    )
    idle_emissions_kg: float = Field(
        default=0.0, ge=0, description="Emissions while idle, kg CO2e."
    )
    tokens: int = Field(default=0, ge=0, description="Prompt plus generated tokens served.")
    g_per_1k_tokens: float | None = Field(
        default=None,
        ge=0,
        alias="gPer1kTokens",
        description=(
            "g CO2e per 1000 tokens over the meters' recent window (windowSeconds), active"
            " energy only: sum of the replicas' window grams / their window tokens x 1000;"
            " absent when no token was served in the window."
        ),
    )
    window_seconds: float | None = Field(
        default=None, ge=0, description="Length of the meters' window behind gPer1kTokens, s."
    )
    method: CarbonMethod = Field(
        default=CarbonMethod.ESTIMATED, description="measured or estimated."
    )
    grid_intensity_g_per_kwh: float | None = Field(default=None, description="g CO2e per kWh used.")
    region: str | None = Field(default=None, description="Grid country/region used.")
    grid_source: str | None = Field(
        default=None,
        max_length=200,
        description="Where the intensity came from: override, live provider or table (and year).",
    )
    grid_time: str | None = Field(
        default=None,
        max_length=40,
        description="The time the intensity refers to: an instant (live) or a year (tables).",
    )
    pods: Annotated[list[PodCarbonBaseline], ListMap("uid")] = Field(
        default_factory=list, description="Per-pod baselines: the last reading already counted."
    )
    by_model_version: Annotated[list[ModelVersionShare], ListMap("model_version")] = Field(
        default_factory=list,
        description=(
            "Totals attributed to each ModelVersion served: each adapter's ticks to its version,"
            " the rest (base-model ticks, idle) to the served version; plus unattributed*, the"
            " deployment's totals."
        ),
    )
    by_adapter: Annotated[list[AdapterShare], ListMap("adapter")] = Field(
        default_factory=list,
        description="Active figures per adapter (the base model under its served name).",
    )
    unattributed_energy_kwh: float = Field(
        default=0.0,
        ge=0,
        description="Active energy of ticks that mixed adapters (not split), kWh.",
    )
    unattributed_emissions_kg: float = Field(
        default=0.0, ge=0, description="Emissions of ticks that mixed adapters, kg CO2e."
    )
    unattributed_tokens: int = Field(
        default=0, ge=0, description="Tokens of ticks that mixed adapters (the shared bucket)."
    )


class TrafficShareStatus(ApiModel):
    """One version of the split as served now."""

    model_version: str = Field(description="ModelVersion.")
    weight: int = Field(description="Percent of requests it is sent now.")
    replicas: int = Field(default=0, description="Replicas wanted for it.")
    ready_replicas: int = Field(default=0, description="Its ready pods.")
    rolled_back: bool = Field(default=False, description="Its rollout missed the deadline.")


class InferenceDeploymentStatus(ApiModel):
    """Observed state of an InferenceDeployment."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    conditions: Conditions = Field(
        default_factory=list, description="Ready, Progressing (and ReplicasLimited)."
    )
    endpoint: str | None = Field(default=None, description="OpenAI base URL, …/v1.")
    model_version: str | None = Field(default=None, description="The version being served.")
    replicas: int = Field(default=0, description="Server pods that exist (current).")
    desired_replicas: int | None = Field(
        default=None,
        description=(
            "Replicas wanted now: the autoscaler's desired count (its HPA's status) with"
            " spec.autoscaling, else the Deployment's spec.replicas."
        ),
    )
    autoscaler: str | None = Field(
        default=None,
        description="What scales the replicas: keda, keda-http, hpa, or none (fixed).",
    )
    ready_replicas: int = Field(default=0, description="Server pods ready to answer.")
    selector: str | None = Field(default=None, description="Pod label selector (/scale).")
    served_models: list[str] = Field(
        default_factory=list, description="Model names clients can call (base and adapters)."
    )
    traffic: list[TrafficShareStatus] = Field(
        default_factory=list,
        description="The split as rendered (after a roll back: 0 for the rolled-back version).",
    )
    traffic_mode: str | None = Field(
        default=None, description="How spec.traffic is split: httproute or replicas."
    )
    carbon: ServingCarbonStatus | None = Field(default=None, description="Serving carbon.")
    recommendations: list[RecommendationBrief] = Field(
        default_factory=list,
        max_length=MAX_STATUS_RECOMMENDATIONS,
        description="Carbon recommendations, biggest estimated saving first.",
    )


class InferenceDeployment(ApiModel):
    """A served model."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["modelgarden.dev/v1alpha1"] = "modelgarden.dev/v1alpha1"
    kind: Literal["InferenceDeployment"] = "InferenceDeployment"
    metadata: ServiceNamedMeta
    spec: InferenceDeploymentSpec
    status: InferenceDeploymentStatus = Field(default_factory=InferenceDeploymentStatus)
