"""ModelVersion: its verification Job (``objects``) and the planner (``plan``)."""

from .plan import ModelVersionWorld, plan_modelversion

__all__ = ["ModelVersionWorld", "plan_modelversion"]
