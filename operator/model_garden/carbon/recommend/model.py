"""What the recommendation rules take and give: the facts about one FineTuneJob or
InferenceDeployment, the inputs (eval points, forecast points), the thresholds, and the
:class:`Recommendation` itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

JOB = "FineTuneJob"
DEPLOYMENT = "InferenceDeployment"

PARAMETER_EFFICIENT = "parameter-efficient"
LOWER_INTENSITY_REGION = "lower-intensity-region"
LOWER_INTENSITY_WINDOW = "lower-intensity-window"
EARLY_STOPPING = "early-stopping"
IDLE_DEPLOYMENT = "idle-deployment"
RIGHT_SIZE_GPUS = "right-size-gpus"
RULES = (
    PARAMETER_EFFICIENT,
    LOWER_INTENSITY_REGION,
    LOWER_INTENSITY_WINDOW,
    EARLY_STOPPING,
    IDLE_DEPLOYMENT,
    RIGHT_SIZE_GPUS,
)

HIGH, MEDIUM, LOW = "high", "medium", "low"


@dataclass(frozen=True)
class Recommendation:
    """One piece of advice about one object, with its estimated saving and what it assumes."""

    rule: str
    target_kind: str
    target: str
    message: str
    saving_kg: float
    assumptions: list[str]
    confidence: str
    namespace: str | None = None


@dataclass(frozen=True)
class EvalPoint:
    """One evaluation of a run: the optimizer step it followed and the eval loss."""

    step: int
    loss: float


@dataclass(frozen=True)
class ForecastPoint:
    """A forecast grid intensity from ``time`` until the next point."""

    time: datetime
    g_per_kwh: float


@dataclass(frozen=True)
class JobFacts:
    """What the rules know of one FineTuneJob (None: not known)."""

    name: str
    namespace: str | None = None
    method: str = "lora"
    base_model: str | None = None
    parameters: int | None = None
    energy_kwh: float = 0.0
    gpu_energy_kwh: float = 0.0
    emissions_kg: float = 0.0
    intensity_g_per_kwh: float | None = None
    region: str | None = None
    steps: int = 0
    duration_seconds: float | None = None
    gpus: int = 0
    evals: tuple[EvalPoint, ...] | None = None
    gpu_utilisation: float | None = None


@dataclass(frozen=True)
class DeploymentFacts:
    """What the rules know of one InferenceDeployment: its cumulative serving figures."""

    name: str
    namespace: str | None = None
    energy_kwh: float = 0.0
    idle_energy_kwh: float = 0.0
    idle_emissions_kg: float = 0.0
    emissions_kg: float = 0.0
    tokens: int = 0
    intensity_g_per_kwh: float | None = None
    region: str | None = None
    replicas: int = 1
    gpus: int = 0
    gpu_utilisation: float | None = None


@dataclass(frozen=True)
class Thresholds:
    """The rules' knobs; each default is stated in docs/carbon.md."""

    large_model_parameters: int = 1_000_000_000
    parameter_efficient_saved_fraction: float = 1 / 3
    min_intensity_gain: float = 0.1
    eval_min_delta: float = 0.01
    eval_patience: int = 2
    max_idle_share: float = 0.5
    min_tokens_per_joule: float = 0.1
    target_gpu_utilisation: float = 0.8
    max_gpu_utilisation: float = 0.4


DEFAULTS = Thresholds()
Facts = JobFacts | DeploymentFacts
