"""What both serving paths of the planner share (one version, a traffic split): the claims
that cap replicas, the versions waited for, the adapters' condition."""

from __future__ import annotations

from typing import Any

from model_garden.api import InferenceDeployment, ModelVersion
from model_garden.api.common import ConditionStatus

from ..observe import version_ready
from ..plan import Plan
from ..status import StatusDraft
from ..storage import Mounts
from .objects import RWO_MODES, by_name


def read_write_once_claims(mounts: Mounts, claims: dict[str, dict[str, Any]]) -> list[str]:
    """The mounted claims that only one node's pods can mount (they cap the replicas at 1 and
    make the rollout Recreate)."""
    out = []
    for claim in mounts.claims:
        modes = set(((claims.get(claim) or {}).get("spec") or {}).get("accessModes") or [])
        if modes and modes <= RWO_MODES:
            out.append(claim)
    return sorted(out)


def not_ready(mv: ModelVersion, model_versions: list[ModelVersion]) -> str | None:
    """The version this one waits for: itself, or the base ModelVersion of an adapter."""
    if not version_ready(mv):
        return mv.metadata.name
    base = by_name(model_versions, str(mv.spec.artifact.base_model or ""))
    if str(mv.spec.artifact.format) == "adapter" and base is not None and not version_ready(base):
        return base.metadata.name
    return None


def adapters_condition(
    plan: Plan,
    st: StatusDraft,
    idep: InferenceDeployment,
    missing: list[str],
    waiting: list[str],
) -> None:
    """``AdaptersReady``: adapters whose ModelVersion is missing or not Ready are served
    without, and said so (a missing one warns; one still verifying is normal)."""
    if missing:
        message = f"Adapter ModelVersion(s) {', '.join(missing)} not found; serving without them."
        if st.set_condition("AdaptersReady", ConditionStatus.FALSE, "AdapterNotFound", message):
            plan.event("Warning", "AdapterNotFound", message)
    elif waiting:
        message = (
            f"Waiting for adapter ModelVersion(s) {', '.join(waiting)} to become Ready (artifact"
            " verification); serving without them until then."
        )
        if st.set_condition("AdaptersReady", ConditionStatus.FALSE, "AdapterNotReady", message):
            plan.event("Normal", "AdapterNotReady", message)
    elif idep.spec.adapters:
        st.set_condition(
            "AdaptersReady", ConditionStatus.TRUE, "Loaded", "Every adapter is configured."
        )
