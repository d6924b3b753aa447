"""Apply-if-changed and clean-up of an InferenceDeployment's optional children: autoscaler
objects, the HTTPRoute, and the Deployments (with their ConfigMap and Service) of versions no
longer served. Pure: they add to a plan from what was observed, so an applied plan replans
empty, and they only delete what this very deployment controls (its uid)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..plan import ObjectRef, Plan, is_subset
from .objects import config_map_name
from .state import InferenceDeploymentWorld


def ours(obj: dict[str, Any], body: dict[str, Any]) -> bool:
    """Controlled by this deployment (same uid): never delete anyone else's object."""
    uid = body["metadata"].get("uid")
    return any(
        ref.get("controller") and ref.get("uid") == uid
        for ref in (obj.get("metadata") or {}).get("ownerReferences") or []
    )


def differs(desired: dict[str, Any], observed: dict[str, Any] | None) -> bool:
    """Whether applying ``desired`` would change ``observed`` (its spec or annotations)."""
    if observed is None:
        return True
    annotations = (desired.get("metadata") or {}).get("annotations") or {}
    observed_annotations = (observed.get("metadata") or {}).get("annotations") or {}
    return not (
        is_subset(desired.get("spec"), observed.get("spec"))
        and is_subset(annotations, observed_annotations)
    )


def plan_scalers(
    plan: Plan,
    body: dict[str, Any],
    world: InferenceDeploymentWorld,
    desired: Iterable[dict[str, Any]],
) -> None:
    """Apply the desired autoscaler objects that differ; delete ours that are not desired
    (autoscaling removed, or KEDA replaced by an HPA). KEDA's own HPA is KEDA's business."""
    wanted = {(obj["kind"], obj["metadata"]["name"]): obj for obj in desired}
    for key, obj in wanted.items():
        if differs(obj, world.scalers.get(key)):
            plan.apply.append(obj)
    for (kind, _name), obj in sorted(world.scalers.items()):
        if kind != "keda-hpa" and (kind, _name) not in wanted and ours(obj, body):
            plan.delete.append(ObjectRef.of(obj))


def plan_route(
    plan: Plan,
    body: dict[str, Any],
    world: InferenceDeploymentWorld,
    desired: dict[str, Any] | None,
) -> None:
    """Apply the HTTPRoute when it differs; delete ours when the split no longer uses one."""
    if desired is not None:
        if differs(desired, world.route):
            plan.apply.append(desired)
    elif world.route is not None and ours(world.route, body):
        plan.delete.append(ObjectRef.of(world.route))


def plan_leftovers(
    plan: Plan,
    body: dict[str, Any],
    world: InferenceDeploymentWorld,
    keep: set[str],
    services: set[str],
) -> list[str]:
    """Delete the Deployments not in ``keep`` (a version promoted away, the one-Deployment
    form after a split or back), with their ConfigMap and per-version Service; and per-version
    Services not in ``services``. Callers delete only once what replaces them is Ready, so
    the Service never runs out of pods. Returns the Deployments deleted."""
    ns = body["metadata"]["namespace"]
    gone = []
    for dep in world.deployments:
        name = dep["metadata"]["name"]
        if name in keep or not ours(dep, body):
            continue
        gone.append(name)
        plan.delete.append(ObjectRef.of(dep))
        plan.delete.append(ObjectRef("v1", "ConfigMap", ns, config_map_name(name)))
    own = body["metadata"]["name"]
    for svc in world.services:
        name = svc["metadata"]["name"]
        if name != own and name not in services and ours(svc, body):
            plan.delete.append(ObjectRef.of(svc))
    return gone
