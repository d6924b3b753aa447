"""Which autoscalers and traffic routers the cluster has: KEDA (and its HTTP add-on), an
external-metrics adapter for the HPA, the Gateway API's HTTPRoute.

The InferenceDeployment planner renders for what is installed, so the operator asks the API
server's discovery (``/apis`` and each candidate group-version's resource list: non-resource
URLs every authenticated identity may read, no RBAC rule needed). ``platform`` is the pure
part (discovery documents in, :class:`Platform` out); ``discover`` does the GETs; the
:class:`DiscoveryCache` keeps the answer ``ttl`` seconds, so installing KEDA or the Gateway API
CRDs later is picked up on a later reconcile (the deployments' timer runs reconciles
periodically) without one discovery round per reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import discovered
from ..discovered import Call, Discovered, group_versions, resource_lists

KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
KEDA_HTTP = ("http.keda.sh", "v1alpha1", "httpscaledobjects")
EXTERNAL_METRICS = "external.metrics.k8s.io"
AUTOSCALING = "autoscaling"
GATEWAY = "gateway.networking.k8s.io"
HTTPROUTE_VERSIONS = ("v1", "v1beta1")
"""HTTPRoute is GA in v1 (Gateway API >= 1.0); v1beta1 on older installs."""


@dataclass(frozen=True)
class Platform:
    """What the cluster serves that the planner can render for."""

    keda: bool = False
    """keda.sh/v1alpha1 scaledobjects."""
    keda_http: bool = False
    """The KEDA HTTP add-on: http.keda.sh/v1alpha1 httpscaledobjects (wake-up on request)."""
    external_metrics: bool = False
    """external.metrics.k8s.io is served (prometheus-adapter or another adapter)."""
    hpa_api_version: str = "autoscaling/v2"
    """autoscaling/v2 where served (1.23+), else autoscaling/v2beta2 (1.20-1.25)."""
    httproute_api_version: str | None = None
    """gateway.networking.k8s.io/v1 (or v1beta1) when HTTPRoute is served; None otherwise."""


def platform(groups: Mapping[str, Any], resources: Mapping[tuple[str, str], set[str]]) -> Platform:
    """The :class:`Platform` from ``/apis`` (an APIGroupList) and the resource names of the
    group-versions that were listed (``resources[(group, version)]``)."""

    def serves(group: str, version: str, resource: str) -> bool:
        return discovered.serves(groups, resources, group, version, resource)

    autoscaling = group_versions(groups, AUTOSCALING)
    route = next((v for v in HTTPROUTE_VERSIONS if serves(GATEWAY, v, "httproutes")), None)
    return Platform(
        keda=serves(*KEDA),
        keda_http=serves(*KEDA_HTTP),
        external_metrics=bool(group_versions(groups, EXTERNAL_METRICS)),
        hpa_api_version="autoscaling/v2" if "v2" in autoscaling else "autoscaling/v2beta2",
        httproute_api_version=f"{GATEWAY}/{route}" if route else None,
    )


def wanted_group_versions(groups: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The group-versions whose resource lists :func:`platform` reads (only those served)."""
    candidates = [KEDA[:2], KEDA_HTTP[:2], *((GATEWAY, v) for v in HTTPROUTE_VERSIONS)]
    return [(g, v) for g, v in candidates if v in group_versions(groups, g)]


def discover(call: Call) -> Platform:
    """Ask the API server (one GET of /apis, one per candidate group-version present)."""
    groups = call("GET", "/apis")
    return platform(groups, resource_lists(call, wanted_group_versions(groups)))


class DiscoveryCache(Discovered[Platform]):
    """The platform as last discovered (:class:`Discovered`): a transient API error must not
    make a deployment look as if its autoscaler were gone."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(discover, "API discovery", clock)
