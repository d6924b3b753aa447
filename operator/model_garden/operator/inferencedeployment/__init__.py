"""InferenceDeployment: builders of its children (``objects``) and the planner (``plan``)."""

from .plan import InferenceDeploymentWorld, plan_inferencedeployment

__all__ = ["InferenceDeploymentWorld", "plan_inferencedeployment"]
