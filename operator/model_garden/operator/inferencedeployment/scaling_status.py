"""The autoscaling part of an InferenceDeployment's status: who scales, the desired replicas,
``AutoscalingReady``."""

from __future__ import annotations

from typing import Any

from model_garden.api.common import ConditionStatus

from ..plan import Plan
from ..status import StatusDraft
from .autoscaling import Scaling
from .state import InferenceDeploymentWorld


def wanted_replicas(scaling: Scaling, deployment: dict[str, Any] | None) -> int:
    """The replicas the rollout waits for: the fixed count, else what the autoscaler set on
    the Deployment (1, the API server's default, before it exists)."""
    if scaling.replicas is not None:
        return scaling.replicas
    if scaling.patch_replicas is not None:
        return scaling.patch_replicas
    observed = ((deployment or {}).get("spec") or {}).get("replicas")
    return int(observed) if observed is not None else 1


def scaling_status(
    plan: Plan,
    st: StatusDraft,
    scaling: Scaling,
    world: InferenceDeploymentWorld,
    deployment: dict[str, Any] | None,
    name: str,
) -> None:
    """``autoscaler``, ``desiredReplicas`` (the HPA's desired count, else the Deployment's
    spec.replicas) and ``AutoscalingReady``; a change to False posts a Warning event."""
    st.fields["autoscaler"] = scaling.autoscaler
    desired = scaling.replicas if scaling.replicas is not None else scaling.patch_replicas
    if desired is None:  # an autoscaler's: its HPA's desired count, else what it set
        kind = "keda-hpa" if scaling.autoscaler.startswith("keda") else "HorizontalPodAutoscaler"
        hpa = world.scalers.get((kind, name)) if scaling.hpa_name else None
        desired = ((hpa or {}).get("status") or {}).get("desiredReplicas")
        if desired is None:
            desired = ((deployment or {}).get("spec") or {}).get("replicas")
    st.fields["desiredReplicas"] = int(desired) if desired is not None else None
    cond = scaling.condition
    if cond is not None:
        if st.set_condition("AutoscalingReady", cond.status, cond.reason, cond.message) and (
            cond.status == ConditionStatus.FALSE
        ):
            plan.event("Warning", cond.reason, cond.message)
    elif st.condition("AutoscalingReady") is not None:
        st.set_condition(
            "AutoscalingReady",
            ConditionStatus.FALSE,
            "NotRequested",
            "spec.autoscaling is not set: spec.replicas fixes the replicas.",
        )
