"""Carbon recommendations: documented rules (:mod:`.rules`) over the facts of each FineTuneJob
and InferenceDeployment (:mod:`.facts`), run together by :mod:`.engine`, each recommendation with
its estimated saving and its assumptions (docs/carbon.md)."""

from .engine import Advice, Unknown, evaluate
from .facts import (
    candidate_regions,
    deployment_facts,
    eval_points,
    forecast_points,
    from_objects,
    job_facts,
    key,
)
from .model import (
    DEFAULTS,
    RULES,
    DeploymentFacts,
    EvalPoint,
    ForecastPoint,
    JobFacts,
    Recommendation,
    Thresholds,
)
from .rules import (
    early_stopping,
    idle_deployment,
    lower_intensity_region,
    lower_intensity_window,
    parameter_efficient,
    parameters_from_name,
    plateau_step,
    right_size_gpus,
)

__all__ = [
    "DEFAULTS",
    "RULES",
    "Advice",
    "DeploymentFacts",
    "EvalPoint",
    "ForecastPoint",
    "JobFacts",
    "Recommendation",
    "Thresholds",
    "Unknown",
    "candidate_regions",
    "deployment_facts",
    "early_stopping",
    "eval_points",
    "evaluate",
    "forecast_points",
    "from_objects",
    "idle_deployment",
    "job_facts",
    "key",
    "lower_intensity_region",
    "lower_intensity_window",
    "parameter_efficient",
    "parameters_from_name",
    "plateau_step",
    "right_size_gpus",
]
