"""spec.traffic: the replica split, roll back, and the rendered split (HTTPRoute validated
against the vendored Gateway API CRD; Deployments and Services against Kubernetes 1.33)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from pydantic import ValidationError

from crd_schemas.vendored import validate
from model_garden.api.inferencedeployment import GatewayRef, InferenceDeploymentSpec
from model_garden.operator.inferencedeployment.discovery import Platform
from model_garden.operator.inferencedeployment.plan import (
    InferenceDeploymentWorld,
    plan_inferencedeployment,
)
from model_garden.operator.inferencedeployment.traffic import (
    LABEL_SERVING_VERSION,
    plan_shares,
    split_replicas,
)

from .factories import NOW, SETTINGS, conditions, idep, mvt

IDEP = "modelgarden.dev/inference-deployment"
GATEWAY_API = Platform(httproute_api_version="gateway.networking.k8s.io/v1")
WITH_GATEWAY = SETTINGS.model_copy(
    update={"traffic_gateway": GatewayRef(name="public", namespace="gateways")}
)
CANARY = [{"modelVersion": "chat-v1", "weight": 90}, {"modelVersion": "chat-v2", "weight": 10}]


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (10, [90, 10], [9, 1]),
        (4, [90, 10], [4, 1]),  # 3.6/0.4: the remainder to the larger, then 1 for a weight
        (1, [90, 10], [1, 1]),  # too few replicas for a canary: one each
        (3, [50, 50], [2, 1]),  # tie: list order
        (5, [100], [5]),
        (4, [0, 100], [4, 4]),  # blue-green: the idle colour kept at full size
        (6, [67, 33], [4, 2]),
        (0, [90, 10], [0, 0]),  # scaled to zero: no version gets a pod
    ],
)
def test_split_replicas(total: int, weights: list[int], expected: list[int]) -> None:
    assert split_replicas(total, weights) == expected


def _deployment(replicas: int, ready: int, exceeded: bool = False) -> dict[str, Any]:
    conditions = [
        {
            "type": "Progressing",
            "status": "False" if exceeded else "True",
            "reason": "ProgressDeadlineExceeded" if exceeded else "NewReplicaSetAvailable",
        }
    ]
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "conditions": conditions,
        },
    }


@pytest.mark.parametrize(
    ("deployments", "weights", "rolled"),
    [
        ({"a": _deployment(9, 9), "b": _deployment(1, 0)}, [90, 10], [False, False]),  # still going
        ({"a": _deployment(9, 9), "b": _deployment(1, 0, exceeded=True)}, [100, 0], [False, True]),
        ({"a": _deployment(9, 0, exceeded=True), "b": _deployment(1, 1)}, [0, 100], [True, False]),
        ({"a": _deployment(9, 0, exceeded=True), "b": _deployment(1, 0, exceeded=True)}, [90, 10], [False, False]),
        ({"a": _deployment(9, 9)}, [90, 10], [False, False]),  # b not created yet
    ],
)  # fmt: skip
def test_roll_back_needs_a_failed_version_and_a_ready_one(
    deployments: dict[str, Any], weights: list[int], rolled: list[bool]
) -> None:
    shares = plan_shares([("a", 90), ("b", 10)], 10, deployments)
    assert [s.weight for s in shares] == weights
    assert [s.rolled_back for s in shares] == rolled


def _plan(
    world: InferenceDeploymentWorld | None = None, settings: Any = SETTINGS, **spec: Any
) -> Any:
    spec.setdefault("traffic", CANARY)
    spec.setdefault("replicas", 10)
    world = world or InferenceDeploymentWorld(
        model_versions=[mvt("chat-v1"), mvt("chat-v2", "chat", 2)]
    )
    return plan_inferencedeployment(idep(**spec), world, settings, NOW)


def _named(plan: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in plan.apply}


def test_replica_weighted_split_behind_one_service() -> None:
    plan = _plan()
    objs = _named(plan)
    v1, v2 = objs[("Deployment", "bot-chat-v1")], objs[("Deployment", "bot-chat-v2")]
    assert (v1["spec"]["replicas"], v2["spec"]["replicas"]) == (9, 1)
    for dep, version in ((v1, "chat-v1"), (v2, "chat-v2")):
        kubernetes_validate.validate(dep, "1.33.0", strict=True)
        assert dep["spec"]["selector"]["matchLabels"] == {
            IDEP: "bot",
            LABEL_SERVING_VERSION: version,
        }
        assert dep["spec"]["template"]["metadata"]["labels"][LABEL_SERVING_VERSION] == version
        assert dep["spec"]["progressDeadlineSeconds"] == 600
        config = objs[("ConfigMap", f"bot-{version}-serving-config")]
        assert f'"modelVersion": "{version}"' in config["data"]["serving-config.json"]
    svc = objs[("Service", "bot")]
    assert svc["spec"]["selector"] == {IDEP: "bot"}  # both versions' pods
    assert not any(kind == "HTTPRoute" for kind, _ in objs)
    assert plan.status["trafficMode"] == "replicas"
    assert conditions(plan.status)["TrafficSplit"] == ("True", "ReplicaWeighted")
    assert plan.status["modelVersion"] == "chat-v1"  # the larger share


def test_httproute_where_the_gateway_api_is_served_and_a_gateway_named() -> None:
    world = InferenceDeploymentWorld(model_versions=[mvt("chat-v1"), mvt("chat-v2", "chat", 2)])
    world.platform = GATEWAY_API
    plan = _plan(world, WITH_GATEWAY)
    objs = _named(plan)
    route = objs[("HTTPRoute", "bot")]
    validate(route)
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public", "namespace": "gateways"}
    ]  # fmt: skip
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"], b["port"]) for b in backends] == [
        ("bot-chat-v1", 90, 8000),
        ("bot-chat-v2", 10, 8000),
    ]
    for version in ("chat-v1", "chat-v2"):
        svc = objs[("Service", f"bot-{version}")]
        kubernetes_validate.validate(svc, "1.33.0", strict=True)
        assert svc["spec"]["selector"] == {IDEP: "bot", LABEL_SERVING_VERSION: version}
    assert plan.status["trafficMode"] == "httproute"
    assert conditions(plan.status)["TrafficSplit"] == ("True", "HTTPRoute")


def test_spec_gateway_wins_and_v1beta1_is_used_where_only_it_is_served() -> None:
    world = InferenceDeploymentWorld(model_versions=[mvt("chat-v1"), mvt("chat-v2", "chat", 2)])
    world.platform = Platform(httproute_api_version="gateway.networking.k8s.io/v1beta1")
    plan = _plan(
        world, WITH_GATEWAY, rollout={"gateway": {"name": "internal", "sectionName": "http"}}
    )
    route = _named(plan)[("HTTPRoute", "bot")]
    validate(route)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1beta1"
    assert route["spec"]["parentRefs"][0]["name"] == "internal"
    assert route["spec"]["parentRefs"][0]["sectionName"] == "http"


def test_gateway_api_without_a_gateway_falls_back_to_replicas_and_says_why() -> None:
    world = InferenceDeploymentWorld(model_versions=[mvt("chat-v1"), mvt("chat-v2", "chat", 2)])
    world.platform = GATEWAY_API
    plan = _plan(world)
    cond = next(c for c in plan.status["conditions"] if c["type"] == "TrafficSplit")
    assert cond["reason"] == "ReplicaWeighted" and "no Gateway named" in cond["message"]


def _observe(
    plan: Any,
    ready: dict[str, int],
    exceeded: tuple[str, ...] = (),
    base: InferenceDeploymentWorld | None = None,
) -> InferenceDeploymentWorld:
    """The world once ``plan`` was applied over ``base``; ``ready`` pods per Deployment."""
    objs: dict[tuple[str, str], dict[str, Any]] = {}
    if base is not None:
        kept = [*base.deployments, *base.services, *base.config_maps, base.network_policy]
        objs = {(o["kind"], o["metadata"]["name"]): o for o in kept if o}
        if base.route:
            objs[("HTTPRoute", "bot")] = base.route
    objs.update({key: json.loads(json.dumps(obj)) for key, obj in _named(plan).items()})
    deleted = {(r.kind, r.name) for r in plan.delete}
    objs = {key: obj for key, obj in objs.items() if key not in deleted}
    for (kind, name), obj in objs.items():
        if kind == "Deployment":
            replicas = obj["spec"]["replicas"]
            obj["status"] = _deployment(replicas, ready.get(name, 0), name in exceeded)["status"]
            obj["metadata"]["generation"] = 2
    return InferenceDeploymentWorld(
        model_versions=[mvt("chat-v1"), mvt("chat-v2", "chat", 2)],
        deployments=[o for (k, _), o in objs.items() if k == "Deployment"],
        services=[o for (k, _), o in objs.items() if k == "Service"],
        config_maps=[o for (k, _), o in objs.items() if k == "ConfigMap"],
        network_policy=objs.get(("NetworkPolicy", "bot")),
        route=objs.get(("HTTPRoute", "bot")),
    )


def test_replan_of_an_applied_split_is_empty() -> None:
    first = _plan()
    world = _observe(first, {"bot-chat-v1": 9, "bot-chat-v2": 1})
    again = plan_inferencedeployment(
        idep(traffic=CANARY, replicas=10, status=first.status), world, SETTINGS, NOW
    )
    assert again.apply == [] and again.delete == [] and again.patch == []


def test_promotion_is_one_field_and_the_old_version_goes_once_the_new_is_ready() -> None:
    first = _plan()
    promoted = [{"modelVersion": "chat-v2", "weight": 100}]
    world = _observe(first, {"bot-chat-v1": 9, "bot-chat-v2": 1})
    plan = _plan(world, traffic=promoted, status=first.status)
    objs = _named(plan)
    assert objs[("Deployment", "bot-chat-v2")]["spec"]["replicas"] == 10
    before = _named(first)[("Deployment", "bot-chat-v2")]["spec"]["template"]
    assert objs[("Deployment", "bot-chat-v2")]["spec"]["template"] == before  # not restarted
    assert objs[("Service", "bot")]["spec"]["selector"] == {
        IDEP: "bot",
        LABEL_SERVING_VERSION: "chat-v2",
    }
    assert plan.delete == []  # v2 has 1 of 10 ready: v1 stays
    world = _observe(plan, {"bot-chat-v1": 9, "bot-chat-v2": 10}, base=world)
    done = _plan(world, traffic=promoted, status=first.status)
    assert {(r.kind, r.name) for r in done.delete} == {
        ("Deployment", "bot-chat-v1"),
        ("ConfigMap", "bot-chat-v1-serving-config"),
    }
    assert done.status["modelVersion"] == "chat-v2"


def test_blue_green_keeps_both_colours_ready_and_sends_all_to_one() -> None:
    plan = _plan(
        traffic=[
            {"modelVersion": "chat-v1", "weight": 0},
            {"modelVersion": "chat-v2", "weight": 100},
        ],
        replicas=3,
    )
    objs = _named(plan)
    assert objs[("Deployment", "bot-chat-v1")]["spec"]["replicas"] == 3
    assert objs[("Deployment", "bot-chat-v2")]["spec"]["replicas"] == 3
    assert objs[("Service", "bot")]["spec"]["selector"][LABEL_SERVING_VERSION] == "chat-v2"


def test_roll_back_renders_zero_for_the_failed_version_and_keeps_the_spec() -> None:
    world = InferenceDeploymentWorld(model_versions=[mvt("chat-v1"), mvt("chat-v2", "chat", 2)])
    world.platform = GATEWAY_API
    first = _plan(world, WITH_GATEWAY)
    world = _observe(first, {"bot-chat-v1": 9}, exceeded=("bot-chat-v2",))
    world.platform = GATEWAY_API
    body = idep(traffic=CANARY, replicas=10, status=first.status)
    plan = plan_inferencedeployment(body, world, WITH_GATEWAY, NOW)
    route = _named(plan)[("HTTPRoute", "bot")]
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    # the failed version's Deployment is left as it is: a changed spec would restart the
    # Deployment controller's clock and clear ProgressDeadlineExceeded (a flapping roll back)
    assert ("Deployment", "bot-chat-v2") not in _named(plan)
    assert [(t["modelVersion"], t["replicas"]) for t in plan.status["traffic"]] == [
        ("chat-v1", 10),
        ("chat-v2", 1),
    ]
    assert conditions(plan.status)["RolledBack"] == ("True", "ProgressDeadlineExceeded")
    assert any(e.reason == "RolledBack" for e in plan.events)
    assert [(t["modelVersion"], t["weight"], t["rolledBack"]) for t in plan.status["traffic"]] == [
        ("chat-v1", 100, False),
        ("chat-v2", 0, True),
    ]
    assert body["spec"]["traffic"] == CANARY
    assert _named(plan)[("Service", "bot")]["spec"]["selector"][LABEL_SERVING_VERSION] == "chat-v1"


def test_a_version_not_ready_or_of_another_model_changes_nothing() -> None:
    world = InferenceDeploymentWorld(
        model_versions=[mvt("chat-v1"), mvt("chat-v2", "chat", 2, ready=False)]
    )
    plan = _plan(world)
    assert not any(o["kind"] == "Deployment" for o in plan.apply)
    assert conditions(plan.status)["Progressing"] == ("True", "WaitingForModelVersion")
    world = InferenceDeploymentWorld(model_versions=[mvt("chat-v1"), mvt("other-v2", "other", 2)])
    plan = _plan(
        world,
        traffic=[
            {"modelVersion": "chat-v1", "weight": 50},
            {"modelVersion": "other-v2", "weight": 50},
        ],
    )
    assert not any(o["kind"] == "Deployment" for o in plan.apply)
    assert conditions(plan.status)["Ready"] == ("False", "DifferentModels")


def test_back_to_one_version_removes_the_route_and_the_split_deployments() -> None:
    world = InferenceDeploymentWorld(model_versions=[mvt("chat-v1"), mvt("chat-v2", "chat", 2)])
    world.platform = GATEWAY_API
    first = _plan(world, WITH_GATEWAY)
    world = _observe(first, {"bot-chat-v1": 9, "bot-chat-v2": 1})
    world.platform = GATEWAY_API
    body = idep(modelVersion="chat-v2", replicas=2, status=first.status)
    plan = plan_inferencedeployment(body, world, WITH_GATEWAY, NOW)
    assert ("HTTPRoute", "bot") in {(r.kind, r.name) for r in plan.delete}
    assert _named(plan)[("Service", "bot")]["spec"]["selector"] == {IDEP: "bot"}
    assert plan.status["traffic"] == [] and plan.status["trafficMode"] is None


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"traffic": [{"modelVersion": "a", "weight": 90}, {"modelVersion": "b", "weight": 20}]}, "add up to 100"),
        ({"traffic": [{"modelVersion": "a", "weight": 50}, {"modelVersion": "a", "weight": 50}]}, "modelVersion='a'"),
        ({"traffic": [{"modelVersion": f"v{i}", "weight": 25} for i in range(4)]}, "traffic"),
        ({"modelVersion": "a", "traffic": [{"modelVersion": "a", "weight": 100}]}, "leave spec.modelVersion"),
        ({"traffic": [{"modelVersion": "a", "weight": 100}], "autoscaling": {"maxReplicas": 2}}, "spec.autoscaling"),
        ({"traffic": [{"modelVersion": "a", "weight": 100}], "rollout": {"progressDeadlineSeconds": 1}}, "progressDeadlineSeconds"),
    ],
)  # fmt: skip
def test_bad_traffic_is_refused_naming_the_field(spec: dict[str, Any], names: str) -> None:
    with pytest.raises(ValidationError) as exc:
        InferenceDeploymentSpec.model_validate(spec)
    assert names in str(exc.value)


def test_a_split_scaled_to_zero_runs_no_pod_of_either_version() -> None:
    plan = _plan(replicas=0)
    objs = _named(plan)
    assert [
        objs[("Deployment", f"bot-{v}")]["spec"]["replicas"] for v in ("chat-v1", "chat-v2")
    ] == [0, 0]
    assert conditions(plan.status)["Ready"] == ("False", "ScaledToZero")
