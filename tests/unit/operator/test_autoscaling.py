"""spec.autoscaling: discovery, the choice of autoscaler, the rendered objects (validated
against the vendored KEDA CRDs and Kubernetes 1.33's HPA schema) and the replicas contract:
while an autoscaler owns them, the Deployment apply leaves spec.replicas out."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from crd_schemas.vendored import validate
from model_garden.api.inferencedeployment import InferenceDeploymentSpec
from model_garden.operator.inferencedeployment.discovery import (
    DiscoveryCache,
    Platform,
    discover,
    platform,
)
from model_garden.operator.inferencedeployment.plan import (
    InferenceDeploymentWorld,
    plan_inferencedeployment,
)

from .factories import NOW, SETTINGS, conditions, idep, mvt

PROM = "http://prometheus.monitoring.svc:9090"
WITH_PROM = SETTINGS.model_copy(update={"autoscaling_prometheus_url": PROM})
KEDA = Platform(keda=True)
KEDA_HTTP = Platform(keda=True, keda_http=True)
ADAPTER = Platform(external_metrics=True)
NOTHING = Platform()


def _groups(*pairs: tuple[str, str]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for group, version in pairs:
        groups.setdefault(group, []).append(version)
    return {
        "kind": "APIGroupList",
        "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs]}
            for g, vs in groups.items()
        ],
    }


@pytest.mark.parametrize(
    ("served", "resources", "expected"),
    [
        ([("autoscaling", "v1"), ("autoscaling", "v2beta2")], {}, Platform(hpa_api_version="autoscaling/v2beta2")),
        ([("autoscaling", "v2"), ("autoscaling", "v2beta2")], {}, Platform()),
        (
            [("autoscaling", "v2"), ("keda.sh", "v1alpha1")],
            {("keda.sh", "v1alpha1"): {"scaledobjects", "scaledjobs"}},
            Platform(keda=True),
        ),
        (  # the group without the ScaledObject CRD is not KEDA's autoscaling
            [("autoscaling", "v2"), ("keda.sh", "v1alpha1")],
            {("keda.sh", "v1alpha1"): {"scaledjobs"}},
            Platform(),
        ),
        (
            [("keda.sh", "v1alpha1"), ("http.keda.sh", "v1alpha1"), ("autoscaling", "v2")],
            {
                ("keda.sh", "v1alpha1"): {"scaledobjects"},
                ("http.keda.sh", "v1alpha1"): {"httpscaledobjects"},
            },
            Platform(keda=True, keda_http=True),
        ),
        (
            [("external.metrics.k8s.io", "v1beta1"), ("autoscaling", "v2beta2")],
            {},
            Platform(external_metrics=True, hpa_api_version="autoscaling/v2beta2"),
        ),
        (
            [("gateway.networking.k8s.io", "v1beta1"), ("gateway.networking.k8s.io", "v1"), ("autoscaling", "v2")],
            {("gateway.networking.k8s.io", "v1"): {"httproutes", "gateways"}},
            Platform(httproute_api_version="gateway.networking.k8s.io/v1"),
        ),
        (
            [("gateway.networking.k8s.io", "v1beta1"), ("autoscaling", "v2")],
            {("gateway.networking.k8s.io", "v1beta1"): {"httproutes"}},
            Platform(httproute_api_version="gateway.networking.k8s.io/v1beta1"),
        ),
    ],
)  # fmt: skip
def test_platform_from_discovery(
    served: list[tuple[str, str]],
    resources: dict[tuple[str, str], set[str]],
    expected: Platform,
) -> None:
    assert platform(_groups(*served), resources) == expected


class FakeApi:
    """The API server's discovery answers (a stand-in for the transport only: envtest covers
    the real server, tests/envtest/test_autoscaling_traffic.py)."""

    def __init__(self, docs: dict[str, Any]) -> None:
        self.docs = docs
        self.calls: list[str] = []
        self.fail = False

    def __call__(self, method: str, path: str, *_: Any, **__: Any) -> Any:
        self.calls.append(path)
        if self.fail:
            raise ApiException(status=503)
        if path not in self.docs:
            raise ApiException(status=404)
        return self.docs[path]


def _keda_api() -> FakeApi:
    return FakeApi(
        {
            "/apis": _groups(("keda.sh", "v1alpha1"), ("autoscaling", "v2")),
            "/apis/keda.sh/v1alpha1": {
                "resources": [{"name": "scaledobjects"}, {"name": "scaledobjects/status"}]
            },
        }
    )


def test_discover_reads_only_candidate_group_versions() -> None:
    api = _keda_api()
    assert discover(api) == Platform(keda=True)
    assert api.calls == ["/apis", "/apis/keda.sh/v1alpha1"]


def test_discovery_cache_asks_again_after_ttl_and_keeps_the_last_answer_on_errors() -> None:
    now = [0.0]
    cache = DiscoveryCache(clock=lambda: now[0])
    api = _keda_api()
    assert cache.current(api, 60).keda
    now[0] = 30
    cache.current(api, 60)
    assert api.calls.count("/apis") == 1  # cached
    now[0] = 61
    api.fail = True
    assert cache.current(api, 60).keda  # a failed re-discovery keeps what was known
    first = DiscoveryCache()
    with pytest.raises(ApiException):  # nothing known yet: the reconcile fails and is retried
        first.current(api, 60)


# --- the choice and the rendered objects ---------------------------------------------------------


def _plan(platform: Platform, settings: Any = WITH_PROM, world: Any = None, **spec: Any) -> Any:
    spec.setdefault("modelVersion", "chat-v1")
    world = world or InferenceDeploymentWorld(model_versions=[mvt("chat-v1")])
    world.platform = platform
    return plan_inferencedeployment(idep(**spec), world, settings, NOW)


def _kinds(plan: Any) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in plan.apply}


AUTOSCALING = {
    "minReplicas": 1,
    "maxReplicas": 4,
    "target": {"metric": "waitingRequests", "value": 3},
}


@pytest.mark.parametrize(
    ("platform_", "settings", "scaling", "autoscaler", "kinds", "condition"),
    [
        (KEDA, WITH_PROM, AUTOSCALING, "keda", {"ScaledObject"}, ("True", "KEDA")),
        (KEDA_HTTP, WITH_PROM, AUTOSCALING, "keda-http", {"ScaledObject", "HTTPScaledObject"}, ("True", "KEDA")),
        (ADAPTER, WITH_PROM, AUTOSCALING, "hpa", {"HorizontalPodAutoscaler"}, ("True", "HPA")),
        (Platform(keda=True, external_metrics=True), WITH_PROM, AUTOSCALING, "keda", {"ScaledObject"}, ("True", "KEDA")),
        (Platform(keda=True, external_metrics=True), SETTINGS, AUTOSCALING, "hpa", {"HorizontalPodAutoscaler"}, ("True", "HPA")),
        (KEDA, SETTINGS, AUTOSCALING, "none", set(), ("False", "NoPrometheusURL")),
        (NOTHING, WITH_PROM, AUTOSCALING, "none", set(), ("False", "NoAutoscaler")),
    ],
)  # fmt: skip
def test_the_autoscaler_follows_what_is_installed(
    platform_: Platform,
    settings: Any,
    scaling: dict[str, Any],
    autoscaler: str,
    kinds: set[str],
    condition: tuple[str, str],
) -> None:
    plan = _plan(platform_, settings, autoscaling=scaling)
    objs = _kinds(plan)
    assert set(objs) - {"NetworkPolicy", "ConfigMap", "Deployment", "Service"} == kinds
    assert plan.status["autoscaler"] == autoscaler
    assert conditions(plan.status)["AutoscalingReady"] == condition
    # the apply never sets the replicas: the autoscaler owns them, or (none installed) a merge
    # patch keeps minReplicas, so the operator never owns a field an autoscaler takes later
    assert "replicas" not in objs["Deployment"]["spec"]
    patches = [(ref.kind, ref.name, body) for ref, body in plan.patch]
    if kinds:
        assert patches == []
    else:
        assert patches == [("Deployment", "bot", {"spec": {"replicas": 1}})]
        message = next(c for c in plan.status["conditions"] if c["type"] == "AutoscalingReady")
        assert ("autoscaling.prometheusUrl" if settings is SETTINGS else "KEDA") in message[
            "message"
        ]
        assert any(e.reason == condition[1] for e in plan.events)


def test_no_autoscaler_keeps_min_replicas() -> None:
    plan = _plan(NOTHING, autoscaling={"minReplicas": 3, "maxReplicas": 5})
    assert [body for _, body in plan.patch] == [{"spec": {"replicas": 3}}]
    assert plan.status["desiredReplicas"] == 3
    world = _world_after(plan, replicas=3)
    world.platform = NOTHING
    body = idep(modelVersion="chat-v1", autoscaling={"minReplicas": 3, "maxReplicas": 5})
    assert plan_inferencedeployment(body, world, WITH_PROM, NOW).patch == []  # already 3


def test_keda_scaled_object_queries_vllm_for_this_deployment() -> None:
    plan = _plan(KEDA, autoscaling=AUTOSCALING)
    so = _kinds(plan)["ScaledObject"]
    validate(so)
    assert so["metadata"]["ownerReferences"][0]["uid"] == "uid-bot"
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "bot"}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (1, 4)
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"  # waiting requests per replica
    assert trigger["metadata"]["serverAddress"] == PROM
    assert trigger["metadata"]["threshold"] == "3"
    assert trigger["metadata"]["query"] == (
        'sum(vllm:num_requests_waiting{namespace="team",pod=~"bot-[a-z0-9]+-[a-z0-9]+"})'
    )


def test_kv_cache_target_is_a_mean_compared_as_a_value() -> None:
    scaling = {"maxReplicas": 3, "target": {"metric": "kvCacheUsage", "value": 75}}
    (trigger,) = _kinds(_plan(KEDA, autoscaling=scaling))["ScaledObject"]["spec"]["triggers"]
    assert trigger["metricType"] == "Value"
    assert trigger["metadata"]["query"].startswith("avg(vllm:kv_cache_usage_perc{")
    assert trigger["metadata"]["threshold"] == "0.75"


def test_scale_to_zero_with_the_http_addon_wakes_on_request() -> None:
    scaling = {"minReplicas": 0, "maxReplicas": 2, "scaleToZeroAfter": "90s"}
    plan = _plan(KEDA_HTTP, autoscaling=scaling)
    objs = _kinds(plan)
    so, hso = objs["ScaledObject"], objs["HTTPScaledObject"]
    validate(so)
    validate(hso)
    assert so["spec"]["minReplicaCount"] == 0
    assert so["spec"]["cooldownPeriod"] == 90
    push = next(t for t in so["spec"]["triggers"] if t["type"] == "external-push")
    assert push["metadata"]["httpScaledObject"] == hso["metadata"]["name"] == "bot"
    # the add-on must not make a second ScaledObject for the same Deployment
    assert hso["metadata"]["annotations"] == {
        "httpscaledobject.keda.sh/skip-scaledobject-creation": "true"
    }
    assert hso["spec"]["scaleTargetRef"]["service"] == "bot"
    # the add-on only wakes (one replica while a request waits); vLLM's gauge scales
    assert hso["spec"]["scalingMetric"] == {"concurrency": {"targetValue": 1000}}
    assert hso["spec"]["hosts"][0] == "bot.team.svc"


def test_scale_to_zero_without_the_addon_is_served_as_one_and_said() -> None:
    plan = _plan(KEDA, autoscaling={"minReplicas": 0, "maxReplicas": 2})
    assert _kinds(plan)["ScaledObject"]["spec"]["minReplicaCount"] == 1
    cond = next(c for c in plan.status["conditions"] if c["type"] == "AutoscalingReady")
    assert "HTTP add-on" in cond["message"]


@pytest.mark.parametrize("metric", ["waitingRequests", "kvCacheUsage"])
def test_hpa_on_external_metric_validates_against_kubernetes(metric: str) -> None:
    value = 50 if metric == "kvCacheUsage" else 2  # percent / requests per replica
    scaling = {"minReplicas": 0, "maxReplicas": 6, "target": {"metric": metric, "value": value}}
    hpa = _kinds(_plan(ADAPTER, autoscaling=scaling))["HorizontalPodAutoscaler"]
    kubernetes_validate.validate(hpa, "1.33.0", strict=True)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 1  # an HPA cannot scale to zero
    external = hpa["spec"]["metrics"][0]["external"]
    assert external["metric"]["selector"]["matchLabels"] == {
        "namespace": "team",
        "model_name": "chat",
    }
    if metric == "kvCacheUsage":
        assert external["target"] == {"type": "Value", "value": "0.5"}
    else:
        assert external["target"] == {"type": "AverageValue", "averageValue": "2"}


def test_hpa_api_version_follows_discovery() -> None:
    old = Platform(external_metrics=True, hpa_api_version="autoscaling/v2beta2")
    hpa = _kinds(_plan(old, autoscaling=AUTOSCALING))["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2beta2"


# --- idempotence, status, clean-up -------------------------------------------------------------


def _world_after(plan: Any, hpa_desired: int | None = None, replicas: int = 2) -> Any:
    """The world once the plan was applied and the autoscaler set ``replicas``."""
    objs = json.loads(json.dumps(_kinds(plan)))
    dep = objs["Deployment"]
    dep["metadata"]["generation"] = 1
    dep["spec"]["replicas"] = replicas  # written by the autoscaler
    dep["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": replicas,
        "updatedReplicas": replicas,
    }
    scalers = {
        (o["kind"], o["metadata"]["name"]): o
        for o in objs.values()
        if o["kind"] in {"ScaledObject", "HTTPScaledObject", "HorizontalPodAutoscaler"}
    }
    if hpa_desired is not None:
        kind = "keda-hpa" if ("ScaledObject", "bot") in scalers else "HorizontalPodAutoscaler"
        hpa = scalers.get((kind, "bot"), {"metadata": {"name": "keda-hpa-bot"}})
        scalers[(kind, "bot")] = {**hpa, "status": {"desiredReplicas": hpa_desired}}
    return InferenceDeploymentWorld(
        model_versions=[mvt("chat-v1")],
        deployment=dep,
        service=objs["Service"],
        config_map=objs["ConfigMap"],
        network_policy=objs["NetworkPolicy"],
        scalers=scalers,
    )


@pytest.mark.parametrize("platform_", [KEDA, KEDA_HTTP, ADAPTER])
def test_replan_after_apply_changes_nothing_whatever_replicas_the_autoscaler_set(
    platform_: Platform,
) -> None:
    first = _plan(platform_, autoscaling=AUTOSCALING)
    world = _world_after(first, hpa_desired=3, replicas=3)
    body = idep(modelVersion="chat-v1", autoscaling=AUTOSCALING, status=first.status)
    world.platform = platform_
    again = plan_inferencedeployment(body, world, WITH_PROM, NOW)
    assert again.apply == [] and again.delete == []
    assert again.status is not None  # replicas and desiredReplicas as the autoscaler set them
    assert (again.status["replicas"], again.status["desiredReplicas"]) == (3, 3)


def test_changing_the_autoscaling_bounds_changes_the_scaler_not_the_pods() -> None:
    first = _plan(KEDA, autoscaling=AUTOSCALING)
    world = _world_after(first)
    world.platform = KEDA
    wider = {**AUTOSCALING, "maxReplicas": 8}
    plan = plan_inferencedeployment(
        idep(modelVersion="chat-v1", autoscaling=wider, status=first.status), world, WITH_PROM, NOW
    )
    assert [o["kind"] for o in plan.apply if o["kind"] != "ConfigMap"] == ["ScaledObject"]
    assert _kinds(plan)["ScaledObject"]["spec"]["maxReplicaCount"] == 8


def test_removing_autoscaling_deletes_our_scaler_and_fixes_replicas_again() -> None:
    first = _plan(KEDA_HTTP, autoscaling=AUTOSCALING)
    world = _world_after(first, replicas=4)  # where the autoscaler left them
    world.platform = KEDA_HTTP
    body = idep(modelVersion="chat-v1", replicas=2, status=first.status)
    plan = plan_inferencedeployment(body, world, WITH_PROM, NOW)
    assert {(r.kind, r.name) for r in plan.delete} == {
        ("ScaledObject", "bot"),
        ("HTTPScaledObject", "bot"),
    }
    # taken back by a merge patch: an apply would conflict with the autoscaler's field manager
    # (and the pods are not rolled: autoscaling never reaches them)
    assert "Deployment" not in _kinds(plan)
    assert [(ref.name, body) for ref, body in plan.patch] == [("bot", {"spec": {"replicas": 2}})]
    assert plan.status["autoscaler"] == "fixed"
    assert conditions(plan.status)["AutoscalingReady"] == ("False", "NotRequested")
    # and from then on: the apply never owns them again (it would conflict with whoever wrote
    # them since), a merge patch sets them when they differ
    body = idep(modelVersion="chat-v1", replicas=2, status={**first.status, **plan.status})
    world.deployment["spec"]["replicas"] = 2
    world.config_map = _kinds(plan)["ConfigMap"]
    world.scalers = {}
    again = plan_inferencedeployment(body, world, WITH_PROM, NOW)
    assert again.apply == [] and again.patch == [] and again.delete == []
    body["spec"]["replicas"] = 3
    scaled = plan_inferencedeployment(body, world, WITH_PROM, NOW)
    assert [b for _, b in scaled.patch] == [{"spec": {"replicas": 3}}]
    assert "Deployment" not in _kinds(scaled)


def test_an_autoscaled_deployment_is_marked_so_the_apply_never_takes_replicas_back() -> None:
    plan = _plan(ADAPTER, autoscaling=AUTOSCALING)
    annotations = _kinds(plan)["Deployment"]["metadata"]["annotations"]
    assert annotations == {"modelgarden.dev/replicas-by": "patch"}
    fixed = _plan(NOTHING, replicas=2)  # never autoscaled: the apply keeps fixing them
    assert "annotations" not in _kinds(fixed)["Deployment"]["metadata"]


def test_someone_elses_scaler_of_the_same_name_is_never_deleted() -> None:
    first = _plan(ADAPTER, autoscaling=AUTOSCALING)
    world = _world_after(first)
    world.platform = ADAPTER
    world.scalers[("HorizontalPodAutoscaler", "bot")]["metadata"]["ownerReferences"] = []
    plan = plan_inferencedeployment(idep(modelVersion="chat-v1"), world, WITH_PROM, NOW)
    assert plan.delete == []


def test_fixed_replicas_need_no_discovery() -> None:
    plan = _plan(NOTHING, replicas=2)
    assert _kinds(plan)["Deployment"]["spec"]["replicas"] == 2
    assert plan.status["autoscaler"] == "fixed"
    assert "AutoscalingReady" not in conditions(plan.status)


# --- the API ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"replicas": 3, "autoscaling": {"maxReplicas": 4}}, "spec.replicas"),
        ({"autoscaling": {"minReplicas": 5, "maxReplicas": 4}}, "minReplicas"),
        ({"autoscaling": {"maxReplicas": 4, "target": {"metric": "kvCacheUsage", "value": 101}}}, "kvCacheUsage"),
        ({"autoscaling": {"maxReplicas": 4, "scaleToZeroAfter": "5 minutes"}}, "scaleToZeroAfter"),
        ({"autoscaling": {"maxReplicas": 0}}, "maxReplicas"),
    ],
)  # fmt: skip
def test_bad_autoscaling_is_refused_naming_the_field(spec: dict[str, Any], names: str) -> None:
    with pytest.raises(ValidationError) as exc:
        InferenceDeploymentSpec.model_validate({"modelVersion": "chat-v1", **spec})
    assert names in str(exc.value)


def test_crd_carries_the_exclusion_for_the_api_server() -> None:
    from model_garden.api.crdgen import all_crds

    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "InferenceDeployment")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("self.replicas <= 1" in r for r in rules)
    assert spec["properties"]["autoscaling"]["properties"]["target"]["properties"]["metric"][
        "enum"
    ] == ["waitingRequests", "kvCacheUsage"]


# --- what the operator reads (world.py) -----------------------------------------------------------


def _served_everything() -> FakeApi:
    keda = {"resources": [{"name": "scaledobjects"}]}
    http = {"resources": [{"name": "httpscaledobjects"}]}
    route = {"resources": [{"name": "httproutes"}]}
    hpa = "/apis/autoscaling/v2/namespaces/team/horizontalpodautoscalers"
    owned = {
        "metadata": {"name": "bot", "ownerReferences": [{"controller": True, "uid": "uid-bot"}]}
    }
    return FakeApi(
        {
            "/apis": _groups(
                ("keda.sh", "v1alpha1"),
                ("http.keda.sh", "v1alpha1"),
                ("gateway.networking.k8s.io", "v1"),
                ("autoscaling", "v2"),
            ),
            "/apis/keda.sh/v1alpha1": keda,
            "/apis/http.keda.sh/v1alpha1": http,
            "/apis/gateway.networking.k8s.io/v1": route,
            "/apis/keda.sh/v1alpha1/namespaces/team/scaledobjects/bot": owned,
            f"{hpa}/keda-hpa-bot": {
                "metadata": {"name": "keda-hpa-bot"},
                "status": {"desiredReplicas": 2},
            },
            "/apis/gateway.networking.k8s.io/v1/namespaces/team/httproutes/bot": owned,
        }
    )


def test_a_deployment_without_autoscaling_or_traffic_costs_no_read() -> None:
    from model_garden.operator.inferencedeployment.world import observe_platform

    api = _served_everything()
    world = InferenceDeploymentWorld()
    observe_platform(world, api, DiscoveryCache(), 60, idep(modelVersion="chat-v1", replicas=2))
    assert api.calls == [] and world.platform is None


def test_an_autoscaled_deployment_reads_its_scalers_by_name_where_served() -> None:
    from model_garden.operator.inferencedeployment.world import observe_platform

    api = _served_everything()
    world = InferenceDeploymentWorld()
    body = idep(modelVersion="chat-v1", autoscaling=AUTOSCALING)
    observe_platform(world, api, DiscoveryCache(), 60, body)
    assert world.platform == Platform(
        keda=True, keda_http=True, httproute_api_version="gateway.networking.k8s.io/v1"
    )
    assert set(world.scalers) == {("ScaledObject", "bot"), ("keda-hpa", "bot")}
    assert world.route is None  # not split: the HTTPRoute is not read
    reads = [c for c in api.calls if "/namespaces/" in c]
    assert len(reads) == 4  # HPA, KEDA's HPA, ScaledObject, HTTPScaledObject
    # a deployment that autoscaled before (status says so) is read too: its leftovers go
    api.calls.clear()
    observe_platform(
        world,
        api,
        DiscoveryCache(),
        60,
        idep(modelVersion="chat-v1", status={"autoscaler": "keda"}),
    )
    assert any("scaledobjects/bot" in c for c in api.calls)


def test_a_split_reads_its_route_and_no_scaler() -> None:
    from model_garden.operator.inferencedeployment.world import observe_platform

    api = _served_everything()
    world = InferenceDeploymentWorld()
    traffic = [{"modelVersion": "chat-v1", "weight": 100}]
    observe_platform(world, api, DiscoveryCache(), 60, idep(traffic=traffic))
    assert world.route is not None and world.scalers == {}
    assert [c for c in api.calls if "/namespaces/" in c] == [
        "/apis/gateway.networking.k8s.io/v1/namespaces/team/httproutes/bot"
    ]
