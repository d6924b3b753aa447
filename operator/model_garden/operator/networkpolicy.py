"""The NetworkPolicy of an InferenceDeployment: who may reach its API and its meter.

Without one, any pod of the cluster can call the model (and, with dynamic adapters, try to
replace one). The API port admits the peers of ``spec.networkPolicy.allowFrom``, by default
the pods of the deployment's own namespace; the meter port admits the operator's pods (it polls
``/carbon`` there) and the admin's metrics scrapers (settings.metrics_scraper_peers, e.g. an
in-cluster Prometheus scraping ``/metrics``; none by default). Everything else to the server pods is dropped. The policy
selects the server pods with the Deployment's own selector.
"""

from __future__ import annotations

from typing import Any

from .plan import child_meta
from .settings import OperatorSettings

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Set on every namespace by Kubernetes (1.21+): selects a namespace by its name."""

SAME_NAMESPACE: list[dict[str, Any]] = [{"podSelector": {}}]
"""A peer with only ``podSelector: {}``: every pod of the policy's own namespace."""


def network_policy_name(deployment_name: str) -> str:
    """Named like the InferenceDeployment (and its Deployment and Service)."""
    return deployment_name


def operator_peer(settings: OperatorSettings) -> dict[str, Any]:
    """The operator's pods, in the operator's namespace (settings)."""
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: settings.operator_namespace}},
        "podSelector": {"matchLabels": dict(settings.operator_pod_labels)},
    }


def meter_peers(settings: OperatorSettings) -> list[dict[str, Any]]:
    """Who may reach the meter port: the operator, then settings.metrics_scraper_peers.

    Namespace users cannot widen this (``spec.networkPolicy.allowFrom`` covers the API port
    only): the meter's figures feed billing-like carbon accounting, so only the admin decides.
    """
    return [operator_peer(settings)] + [p.to_wire() for p in settings.metrics_scraper_peers]


def build_network_policy(
    body: dict[str, Any],
    labels: dict[str, str],
    pod_selector: dict[str, str],
    api_port: int,
    meter_port: int,
    allow_from: list[dict[str, Any]],
    settings: OperatorSettings,
) -> dict[str, Any]:
    """networking.k8s.io/v1 NetworkPolicy owned by the InferenceDeployment ``body``.

    ``pod_selector`` is the Deployment's ``matchLabels``; ``allow_from`` the wire form of
    ``spec.networkPolicy.allowFrom`` (peers with ``namespaceSelector`` and/or ``podSelector``);
    empty means the pods of the same namespace. Ports are numbers, as in the ServingConfig.
    """
    peers = [dict(peer) for peer in allow_from] or [dict(p) for p in SAME_NAMESPACE]
    name = network_policy_name(body["metadata"]["name"])
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": child_meta(body, name, labels),
        "spec": {
            "podSelector": {"matchLabels": dict(pod_selector)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": peers, "ports": [{"protocol": "TCP", "port": api_port}]},
                {
                    "from": meter_peers(settings),
                    "ports": [{"protocol": "TCP", "port": meter_port}],
                },
            ],
        },
    }
