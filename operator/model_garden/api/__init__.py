"""Typed API of Model Garden: the three resources and the contracts between the pieces."""

from .common import (
    API_VERSION,
    GROUP,
    VERSION,
    CarbonMethod,
    CarbonReport,
    Condition,
    ConditionStatus,
    get_condition,
    is_true,
    set_condition,
)
from .contracts import (
    ServingCarbon,
    ServingConfig,
    TrainingConfig,
    TrainingProgress,
    TrainingResult,
)
from .finetunejob import FineTuneJob, FineTuneJobSpec, FineTuneJobStatus
from .inferencedeployment import (
    InferenceDeployment,
    InferenceDeploymentSpec,
    InferenceDeploymentStatus,
)
from .modelversion import ModelVersion, ModelVersionSpec, ModelVersionStatus, version_name

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "CarbonMethod",
    "CarbonReport",
    "Condition",
    "ConditionStatus",
    "FineTuneJob",
    "FineTuneJobSpec",
    "FineTuneJobStatus",
    "InferenceDeployment",
    "InferenceDeploymentSpec",
    "InferenceDeploymentStatus",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "ServingCarbon",
    "ServingConfig",
    "TrainingConfig",
    "TrainingProgress",
    "TrainingResult",
    "get_condition",
    "is_true",
    "set_condition",
    "version_name",
]
