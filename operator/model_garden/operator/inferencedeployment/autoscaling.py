"""``spec.autoscaling`` rendered for the autoscaler the cluster has (pure builders).

Preference: KEDA (a ``ScaledObject`` with a Prometheus trigger on vLLM's gauge; with the KEDA
HTTP add-on also an ``HTTPScaledObject`` and an ``external-push`` trigger, so a request wakes a
deployment scaled to zero), else an HPA on an External metric (prometheus-adapter serves
``external.metrics.k8s.io``), else nothing: the Deployment keeps ``minReplicas`` (at least 1)
and ``AutoscalingReady`` names what to install. While an autoscaler owns the replicas the
operator's Deployment apply leaves ``spec.replicas`` out (server-side apply then never resets
what the autoscaler wrote). Once a Deployment was autoscaled (it then carries
``ANNOTATION_REPLICAS``), its replicas are never in the apply again: with no autoscaler
installed, and after ``spec.autoscaling`` is removed, they are set by a merge patch, an update
that never conflicts with the field manager of a (former) autoscaler, where an apply would
(and the operator never comes to own a field it would later have to drop: dropping an owned
field from an apply removes it, and the Deployment would fall back to 1 replica).

Scale to zero needs a way back: with no pod there is no vLLM gauge, so only the HTTP add-on's
interceptor (which holds the request and scales up) can wake it. Without the add-on
``minReplicas: 0`` is served as 1 and the condition says so. The HPA (v2/v2beta2) cannot go
below 1 either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from model_garden.api import InferenceDeployment
from model_garden.api.common import ConditionStatus
from model_garden.api.inferencedeployment import (
    Autoscaling,
    AutoscalingMetric,
    duration_seconds,
)

from ..plan import child_meta
from ..settings import OperatorSettings
from .discovery import Platform

KEDA_API = "keda.sh/v1alpha1"
KEDA_HTTP_API = "http.keda.sh/v1alpha1"
SKIP_SCALED_OBJECT = "httpscaledobject.keda.sh/skip-scaledobject-creation"
"""The HTTP add-on then leaves the ScaledObject to us (one ScaledObject per Deployment: ours
carries both the Prometheus and the add-on's external-push trigger)."""

WAKE_CONCURRENCY = 1000
"""The add-on trigger's concurrency target per replica: so high that it asks for one replica
while a request is pending (wake-up) and never more; vLLM's gauge does the scaling (vLLM batches
many concurrent requests per replica, so a per-request target would over-scale)."""

SERIES = {
    AutoscalingMetric.WAITING_REQUESTS: "vllm:num_requests_waiting",
    AutoscalingMetric.KV_CACHE_USAGE: "vllm:kv_cache_usage_perc",
}
"""vLLM's gauges (vllm/v1/metrics/loggers.py, vLLM 0.32): labels model_name and engine; the
scrape adds namespace and pod."""
EXTERNAL_NAMES = {
    AutoscalingMetric.WAITING_REQUESTS: "vllm_num_requests_waiting",
    AutoscalingMetric.KV_CACHE_USAGE: "vllm_kv_cache_usage_perc",
}
"""The External metric names the documented prometheus-adapter rules expose (docs/serving.md)."""


ANNOTATION_REPLICAS = "modelgarden.dev/replicas-by"
"""On a Deployment that was ever autoscaled: ``patch``, its replicas are never in the apply
again (the apply would conflict with the field manager of whoever wrote them since)."""


@dataclass(frozen=True)
class ConditionDraft:
    status: ConditionStatus
    reason: str
    message: str


@dataclass
class Scaling:
    """What the planner applies for one Deployment's replicas."""

    autoscaler: str
    """keda-http, keda, hpa, none (no autoscaler installed) or fixed (no spec.autoscaling)."""
    objects: list[dict[str, Any]] = field(default_factory=list)
    """Desired autoscaler objects (ScaledObject, HTTPScaledObject or HPA)."""
    replicas: int | None = None
    """spec.replicas in the Deployment's apply; None: left out (an autoscaler owns it, or
    ``patch_replicas`` sets it)."""
    patch_replicas: int | None = None
    """Replicas set by a merge patch (an update, which takes the field over from a former
    autoscaler's field manager where server-side apply would conflict) when they differ."""
    hpa_name: str | None = None
    """The HPA whose status.desiredReplicas is the desired count (KEDA's or ours)."""
    condition: ConditionDraft | None = None
    """AutoscalingReady (None without spec.autoscaling)."""


def pod_regex(deployment: str) -> str:
    """The names of a Deployment's pods: <deployment>-<replicaset hash>-<suffix>."""
    return f"{deployment}-[a-z0-9]+-[a-z0-9]+"


def promql(metric: str, namespace: str, deployment: str) -> str:
    """The load of one Deployment's pods: the sum of waiting requests (KEDA divides by the
    replicas: AverageValue), or the mean KV-cache usage (compared as a Value)."""
    series = SERIES[AutoscalingMetric(metric)]
    agg = "avg" if metric == AutoscalingMetric.KV_CACHE_USAGE else "sum"
    return f'{agg}({series}{{namespace="{namespace}",pod=~"{pod_regex(deployment)}"}})'


def _metric_type(metric: str) -> str:
    return "Value" if metric == AutoscalingMetric.KV_CACHE_USAGE else "AverageValue"


def keda_objects(
    body: dict[str, Any],
    labels: dict[str, str],
    deployment: str,
    service: str,
    port: int,
    spec: Autoscaling,
    settings: OperatorSettings,
    http_addon: bool,
) -> list[dict[str, Any]]:
    """The ScaledObject (and with the HTTP add-on, the HTTPScaledObject it reads from)."""
    ns = body["metadata"]["namespace"]
    minimum = spec.min_replicas if http_addon else max(spec.min_replicas, 1)
    triggers: list[dict[str, Any]] = [
        {
            "type": "prometheus",
            "name": "vllm-load",
            "metricType": _metric_type(spec.target.metric),
            "metadata": {
                "serverAddress": str(settings.autoscaling_prometheus_url),
                "query": promql(spec.target.metric, ns, deployment),
                "threshold": spec.target.threshold,
                "ignoreNullValues": "true",
            },
        }
    ]
    objects: list[dict[str, Any]] = []
    if http_addon:
        triggers.append(
            {
                "type": "external-push",
                "name": "http-wake-up",
                "metadata": {
                    "httpScaledObject": deployment,
                    "scalerAddress": settings.keda_http_scaler_address,
                },
            }
        )
        objects.append(
            {
                "apiVersion": KEDA_HTTP_API,
                "kind": "HTTPScaledObject",
                "metadata": child_meta(
                    body, deployment, labels, annotations={SKIP_SCALED_OBJECT: "true"}
                ),
                "spec": {
                    "hosts": [f"{service}.{ns}.svc", f"{service}.{ns}.svc.cluster.local"],
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": deployment,
                        "service": service,
                        "port": port,
                    },
                    "replicas": {"min": minimum, "max": spec.max_replicas},
                    "scaledownPeriod": duration_seconds(spec.scale_to_zero_after),
                    "scalingMetric": {"concurrency": {"targetValue": WAKE_CONCURRENCY}},
                },
            }
        )
    scaled = {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": child_meta(body, deployment, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicaCount": minimum,
            "maxReplicaCount": spec.max_replicas,
            "cooldownPeriod": duration_seconds(spec.scale_to_zero_after),
            "pollingInterval": 15,
            "triggers": triggers,
        },
    }
    return [scaled, *objects]


def hpa_object(
    body: dict[str, Any],
    labels: dict[str, str],
    deployment: str,
    served_model: str,
    spec: Autoscaling,
    api_version: str,
) -> dict[str, Any]:
    """An HPA on the External metric prometheus-adapter serves for vLLM's gauge.

    An HPA's metric selector has no regular expressions, so the series are chosen by vLLM's
    own ``model_name`` label (the served model name) in the deployment's namespace.
    """
    ns = body["metadata"]["namespace"]
    metric = spec.target.metric
    target: dict[str, Any] = {"type": _metric_type(metric)}
    target["value" if target["type"] == "Value" else "averageValue"] = spec.target.threshold
    return {
        "apiVersion": api_version,
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_meta(body, deployment, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": max(spec.min_replicas, 1),
            "maxReplicas": spec.max_replicas,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": EXTERNAL_NAMES[AutoscalingMetric(metric)],
                            "selector": {
                                "matchLabels": {"namespace": ns, "model_name": served_model}
                            },
                        },
                        "target": target,
                    },
                }
            ],
        },
    }


def plan_scaling(
    body: dict[str, Any],
    idep: InferenceDeployment,
    labels: dict[str, str],
    deployment: str,
    service: str,
    port: int,
    served_model: str,
    platform: Platform,
    settings: OperatorSettings,
    patched: bool = False,
) -> Scaling:
    """Decide who owns the Deployment's replicas and render its autoscaler. ``patched``: the
    Deployment's replicas are set by merge patch (it carries ANNOTATION_REPLICAS)."""
    spec = idep.spec.autoscaling
    if spec is None:
        if patched:  # autoscaled once: the apply has left the replicas to others since
            return Scaling(autoscaler="fixed", patch_replicas=idep.spec.replicas)
        return Scaling(autoscaler="fixed", replicas=idep.spec.replicas)
    zero_note = ""
    if platform.keda and settings.autoscaling_prometheus_url:
        if spec.min_replicas == 0 and not platform.keda_http:
            zero_note = (
                " minReplicas 0 is served as 1: scaling to zero needs the KEDA HTTP add-on"
                " (http.keda.sh) to wake the deployment on a request."
            )
        kind = "keda-http" if platform.keda_http else "keda"
        wake = (
            f" Requests through the add-on's interceptor with Host {service}.{idep.metadata.namespace}.svc"
            " wake it from zero."
            if platform.keda_http
            else ""
        )
        message = (
            f"KEDA ScaledObject {deployment} scales {spec.min_replicas}-{spec.max_replicas}"
            f" replicas on {SERIES[AutoscalingMetric(spec.target.metric)]}"
            f" (target {spec.target.threshold}).{wake}{zero_note}"
        )
        return Scaling(
            autoscaler=kind,
            objects=keda_objects(
                body, labels, deployment, service, port, spec, settings, platform.keda_http
            ),
            hpa_name=f"keda-hpa-{deployment}",
            condition=ConditionDraft(ConditionStatus.TRUE, "KEDA", message),
        )
    if platform.external_metrics:
        if spec.min_replicas == 0:
            zero_note = " minReplicas 0 is served as 1: an HPA cannot scale to zero."
        message = (
            f"HorizontalPodAutoscaler {deployment} scales {spec.max_replicas} at most on the"
            f" External metric {EXTERNAL_NAMES[AutoscalingMetric(spec.target.metric)]}"
            f" (target {spec.target.threshold}).{zero_note}"
        )
        return Scaling(
            autoscaler="hpa",
            objects=[
                hpa_object(body, labels, deployment, served_model, spec, platform.hpa_api_version)
            ],
            hpa_name=deployment,
            condition=ConditionDraft(ConditionStatus.TRUE, "HPA", message),
        )
    fallback = max(spec.min_replicas, 1)
    if platform.keda:
        reason = "NoPrometheusURL"
        message = (
            "KEDA is installed but the operator has no Prometheus URL for its trigger: set the"
            " chart value autoscaling.prometheusUrl (MODEL_GARDEN_OPERATOR_AUTOSCALING_PROMETHEUS_URL)."
        )
    else:
        reason = "NoAutoscaler"
        message = (
            "No autoscaler found: install KEDA (keda.sh ScaledObject; plus its HTTP add-on for"
            " scale to zero) or prometheus-adapter (external.metrics.k8s.io) for an HPA."
        )
    return Scaling(
        autoscaler="none",
        patch_replicas=fallback,
        condition=ConditionDraft(
            ConditionStatus.FALSE, reason, f"{message} Running {fallback} replica(s) meanwhile."
        ),
    )
