"""The NetworkPolicy of an InferenceDeployment: API port from allowFrom, meter port from the
operator and the admin's metrics scrapers."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from pydantic import ValidationError

from model_garden.api.inferencedeployment import InferenceDeploymentSpec
from model_garden.operator.networkpolicy import build_network_policy
from model_garden.operator.settings import OperatorSettings

KUBERNETES_VERSION = "1.33.0"
BODY = {
    "apiVersion": "modelgarden.dev/v1alpha1",
    "kind": "InferenceDeployment",
    "metadata": {"name": "bot", "namespace": "team", "uid": "uid-bot"},
}
SELECTOR = {"modelgarden.dev/inference-deployment": "bot"}
SETTINGS = OperatorSettings(operator_namespace="mg-system", operator_pod_labels={"app": "mg-op"})


def _policy(allow_from: list[dict[str, Any]]) -> dict[str, Any]:
    return build_network_policy(
        BODY, {"app.kubernetes.io/component": "server"}, SELECTOR, 8000, 9400, allow_from, SETTINGS
    )


PEERS = [
    [],
    [{"namespaceSelector": {"matchLabels": {"team": "apps"}}}],
    [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}},
            "podSelector": {"matchLabels": {"app": "frontend"}},
        },
        {"podSelector": {"matchLabels": {"role": "client"}}},
    ],
]


@pytest.mark.parametrize("allow_from", PEERS, ids=["default", "namespaces", "pods"])
def test_network_policy_validates_against_a_current_kubernetes(
    allow_from: list[dict[str, Any]],
) -> None:
    kubernetes_validate.validate(_policy(allow_from), KUBERNETES_VERSION, strict=True)


def test_default_admits_the_api_port_from_the_same_namespace_only() -> None:
    policy = _policy([])
    spec = policy["spec"]
    assert policy["metadata"]["name"] == "bot" and policy["metadata"]["namespace"] == "team"
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "uid-bot"
    assert spec["podSelector"] == {"matchLabels": SELECTOR}
    assert spec["policyTypes"] == ["Ingress"]
    api, meter = spec["ingress"]
    assert api == {"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": 8000}]}
    assert meter == {
        "from": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mg-system"}},
                "podSelector": {"matchLabels": {"app": "mg-op"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 9400}],
    }


def test_allow_from_replaces_the_default_and_never_opens_the_meter() -> None:
    peers = PEERS[2]
    api, meter = _policy(peers)["spec"]["ingress"]
    assert api["from"] == peers
    assert meter["from"] == [_policy([])["spec"]["ingress"][1]["from"][0]]
    assert {p["port"] for p in api["ports"]} == {8000}


def test_the_spec_peers_wire_form_validates() -> None:
    """What the planner passes: spec.networkPolicy.allowFrom as the API models write it."""
    spec = InferenceDeploymentSpec.model_validate(
        {
            "modelVersion": "chat-v1",
            "networkPolicy": {
                "allowFrom": [
                    {"namespaceSelector": {"matchLabels": {"team": "web"}}},
                    {"podSelector": {}},
                ]
            },
        }
    )
    peers = [p.to_wire() for p in spec.network_policy.allow_from]
    policy = _policy(peers)
    kubernetes_validate.validate(policy, KUBERNETES_VERSION, strict=True)
    assert policy["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "web"}}},
        {"podSelector": {"matchLabels": {}}},
    ]


PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, "1.25.0"])  # oldest bundled
def test_metrics_scrapers_join_the_operator_on_the_meter_port_only(
    monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    """An in-cluster Prometheus (the chart's monitoring.meterScrapers) may scrape the meter;
    the API port and the operator's own entry are unchanged."""
    monkeypatch.setenv("MODEL_GARDEN_OPERATOR_METRICS_SCRAPER_PEERS", json.dumps([PROMETHEUS]))
    settings = OperatorSettings(
        operator_namespace="mg-system", operator_pod_labels={"app": "mg-op"}
    )
    policy = build_network_policy(BODY, {}, SELECTOR, 8000, 9400, [], settings)
    kubernetes_validate.validate(policy, version, strict=True)
    api, meter = policy["spec"]["ingress"]
    assert api["from"] == [{"podSelector": {}}]
    assert meter["from"] == _policy([])["spec"]["ingress"][1]["from"] + [PROMETHEUS]
    assert meter["ports"] == [{"protocol": "TCP", "port": 9400}]


def test_by_default_nobody_but_the_operator_reaches_the_meter() -> None:
    assert OperatorSettings().metrics_scraper_peers == []
    (operator,) = _policy([])["spec"]["ingress"][1]["from"]
    assert operator["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "mg-system"
    }


def test_a_scraper_peer_without_a_selector_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer of neither selector would be read as "any pod": the settings refuse it."""
    monkeypatch.setenv("MODEL_GARDEN_OPERATOR_METRICS_SCRAPER_PEERS", "[{}]")
    with pytest.raises(ValidationError, match="metrics_scraper_peers"):
        OperatorSettings()
