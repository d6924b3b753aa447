"""The InferenceDeployment's world beyond kopf's indexes: the cluster's platform (discovery,
cached) and the autoscaler and route objects of this deployment (read by name).

Those kinds are CRDs that may be absent (KEDA, Gateway API), so they are not watched: the
operator reads the few objects it named itself, only where their kind is served, at each
reconcile of a deployment that uses them (or used them: the planner deletes leftovers).
This is the one module of the InferenceDeployment planner that does I/O.
"""

from __future__ import annotations

from typing import Any

from ..discovered import Call, get_or_none
from .discovery import DiscoveryCache, Platform
from .state import InferenceDeploymentWorld
from .traffic import deployment_names

Scalers = dict[tuple[str, str], dict[str, Any]]


def scaler_paths(platform: Platform, namespace: str, name: str) -> dict[str, str]:
    """kind -> path of the objects named ``name`` that may belong to a deployment of that name
    (each only where its kind is served), plus KEDA's own HPA (its desired replicas)."""
    ns = f"namespaces/{namespace}"
    hpa = f"/apis/{platform.hpa_api_version}/{ns}/horizontalpodautoscalers"
    paths = {"HorizontalPodAutoscaler": f"{hpa}/{name}", "keda-hpa": f"{hpa}/keda-hpa-{name}"}
    if platform.keda:
        paths["ScaledObject"] = f"/apis/keda.sh/v1alpha1/{ns}/scaledobjects/{name}"
    if platform.keda_http:
        paths["HTTPScaledObject"] = f"/apis/http.keda.sh/v1alpha1/{ns}/httpscaledobjects/{name}"
    return paths


def observe_platform(
    world: InferenceDeploymentWorld,
    call: Call,
    cache: DiscoveryCache,
    ttl: float,
    body: dict[str, Any],
) -> None:
    """Fill ``world.platform``, ``world.scalers`` and ``world.routes`` for ``body``.

    Only deployments that autoscale, split traffic, or did so before (status says which)
    cost reads; the others keep the one-Deployment path with no extra call.
    """
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    autoscaled = bool(spec.get("autoscaling")) or status.get("autoscaler") not in (None, "fixed")
    routed = bool(spec.get("traffic")) or bool(status.get("traffic"))
    if not (autoscaled or routed):
        return
    world.platform = cache.current(call, ttl)
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    scalers: Scalers = {}
    for deployment in deployment_names(body, world.deployments) if autoscaled else []:
        for kind, path in scaler_paths(world.platform, namespace, deployment).items():
            obj = get_or_none(call, path)
            if obj is not None:
                scalers[(kind, deployment)] = obj
    world.scalers = scalers
    route_api = world.platform.httproute_api_version
    if routed and route_api is not None:
        route = get_or_none(call, f"/apis/{route_api}/namespaces/{namespace}/httproutes/{name}")
        world.route = route
