"""FineTuneJob: builders of its children (``objects``), why it is stuck or failed
(``diagnose``), whether it may start (``admission``) and the planner (``plan``)."""

from .plan import FineTuneJobWorld, plan_finetunejob

__all__ = ["FineTuneJobWorld", "plan_finetunejob"]
