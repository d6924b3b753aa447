"""Autoscaling and traffic splits against a real kube-apiserver 1.20 + kube-controller-manager.

The vendored KEDA and Gateway API CRDs are installed here (CEL stripped: tests/crd_schemas).
No KEDA or prometheus-adapter runs: detection is what the operator's discovery sees. The real
HPA controller of kube-controller-manager does run: with prometheus-adapter's APIService
registered (not answering) it still scales a Deployment up to ``minReplicas``, a real
autoscaler writing replicas. KEDA's writes are played through the Deployment's ``/scale``
subresource, as KEDA's HPA does. There is no kubelet: tests play it by writing server pods'
status Ready (the ReplicaSet and Deployment controllers then report the rollout); a version
whose pods are never made Ready is the roll-back case, judged by the real Deployment
controller (ProgressDeadlineExceeded).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from crd_schemas.vendored import for_envtest
from model_garden.operator.runner import OperatorThread, load_client
from model_garden.operator.settings import OperatorSettings

from .test_operator import API, Cluster, in_ns, inference_deployment, model_version, wait_for

pytestmark = pytest.mark.envtest

PROM = "http://prometheus.monitoring.svc:9090"
IDEP_LABEL = "modelgarden.dev/inference-deployment"
VERSION_LABEL = "modelgarden.dev/serving-version"
CRDS = {
    "keda": ("keda.sh", "ScaledObject"),
    "keda-http": ("http.keda.sh", "HTTPScaledObject"),
    "httproute": ("gateway.networking.k8s.io", "HTTPRoute"),
}
EXTERNAL_METRICS = "v1beta1.external.metrics.k8s.io"
RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac"


def settings(**update: Any) -> OperatorSettings:
    return OperatorSettings(
        progress_poll_seconds=1,
        meter_poll_seconds=1,
        resync_seconds=2,
        discovery_seconds=1,
        metrics_port=0,
        health_port=0,
        max_running_per_namespace=0,
        autoscaling_prometheus_url=PROM,
        **update,
    )


class Platform:
    """Installs and removes the engines' CRDs and the external-metrics APIService."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.crds: list[str] = []
        self.apiservice = False

    def install(self, what: str) -> None:
        body = for_envtest(*CRDS[what])
        name = body["metadata"]["name"]
        self.cluster.x.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
        self.crds.append(name)
        wait_for(
            f"{name} Established",
            lambda: any(
                c["type"] == "Established" and c["status"] == "True"
                for c in ((self._crd(name) or {}).get("status") or {}).get("conditions") or []
            ),
        )

    def _crd(self, name: str) -> dict[str, Any] | None:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        try:
            return dict(self.cluster.x.call("GET", path))
        except Exception:
            return None

    def register_external_metrics(self) -> None:
        """prometheus-adapter's APIService (its backend is not running: discovery lists the
        group, and the HPA controller reads no metric)."""
        self.cluster.x.call(
            "POST",
            "/apis/apiregistration.k8s.io/v1/apiservices",
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": EXTERNAL_METRICS},
                "spec": {
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "service": {"name": "prometheus-adapter", "namespace": "monitoring"},
                    "insecureSkipTLSVerify": True,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            },
        )
        self.apiservice = True

    def remove(self) -> None:
        for name in self.crds:
            self.cluster.x.call(
                "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
            )
        for name in self.crds:
            wait_for(f"{name} gone", lambda n=name: self._crd(n) is None)
        if self.apiservice:
            self.cluster.x.call(
                "DELETE", f"/apis/apiregistration.k8s.io/v1/apiservices/{EXTERNAL_METRICS}"
            )
        self.crds, self.apiservice = [], False


@pytest.fixture(scope="module")
def cluster(kube_env: Any, crds_installed: list[str]) -> Cluster:
    return Cluster(kube_env.api_client)


@pytest.fixture()
def platform(cluster: Cluster) -> Iterator[Platform]:
    """What a test installs is removed after it (other tests see a bare API server)."""
    p = Platform(cluster)
    yield p
    p.remove()


@pytest.fixture()
def operator(kube_env: Any, crds_installed: list[str]) -> Iterator[Callable[..., OperatorThread]]:
    started: list[OperatorThread] = []

    def start(**update: Any) -> OperatorThread:
        op = OperatorThread(load_client(kube_env.kubeconfig), settings(**update))
        started.append(op)
        return op.start()

    yield start
    for op in started:
        op.stop()


def _idep(cluster: Cluster, ns: str, name: str = "bot") -> dict[str, Any]:
    return cluster.get(API, "InferenceDeployment", ns, name) or {}


def _cond(cluster: Cluster, ns: str, type: str, name: str = "bot") -> tuple[str, str] | None:
    c = cluster.condition(_idep(cluster, ns, name), type)
    return (c["status"], c["reason"]) if c else None


def _deployment(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.get("apps/v1", "Deployment", ns, name) or {}


def _versions(cluster: Cluster, ns: str, *names: str) -> None:
    for i, name in enumerate(names, start=1):
        cluster.create(in_ns(model_version(name, "bot", i), ns))
        cluster.verify(ns, name)
    for name in names:
        wait_for(
            f"{name} Ready",
            lambda n=name: (cluster.condition(cluster.get(API, "ModelVersion", ns, n), "Ready") or {})
            .get("status") == "True",
        )  # fmt: skip


def _scale(cluster: Cluster, ns: str, name: str, replicas: int) -> None:
    """What KEDA's HPA does: write the Deployment's /scale subresource."""
    cluster.x.call(
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
        {"spec": {"replicas": replicas}},
        query=[("fieldManager", "keda-operator")],
        content_type="application/merge-patch+json",
    )


def _config_hash(dep: dict[str, Any]) -> str | None:
    annotations = dep.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations")
    return (annotations or {}).get("modelgarden.dev/config-hash")


def _reapply(cluster: Cluster, ns: str, max_model_len: int) -> dict[str, Any]:
    """Change the spec so that the operator re-applies the Deployment (a new pod template:
    what vLLM reads at start changed); returns the re-applied Deployment."""
    before = _config_hash(_deployment(cluster, ns, "bot"))
    cluster.patch(
        API, "InferenceDeployment", ns, "bot", {"spec": {"engine": {"maxModelLen": max_model_len}}}
    )
    dep: dict[str, Any] = wait_for(
        "Deployment re-applied",
        lambda: (d := _deployment(cluster, ns, "bot")) and _config_hash(d) != before and d,
    )
    return dep


def _play_ready(cluster: Cluster, ns: str, selector: str, want: int) -> None:
    """Play the kubelet: the server pods of ``selector`` run and are Ready."""
    pods = wait_for(
        f"{want} pod(s) of {selector}",
        lambda: (p := cluster.list("v1", "Pod", ns, selector)) and len(p) >= want and p,
    )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for pod in pods:
        status = {
            "phase": "Running",
            "podIP": "127.0.0.1",
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": [
                {
                    "name": "server",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "image": "server",
                    "imageID": "server@sha256:0",
                    "state": {"running": {"startedAt": now}},
                }
            ],
        }
        cluster.patch("v1", "Pod", ns, pod["metadata"]["name"], {"status": status}, sub="status")


# --- autoscaling ---------------------------------------------------------------------------------


def test_neither_autoscaler_says_what_to_install_and_keeps_min_replicas(
    cluster: Cluster, operator: Callable[..., OperatorThread], platform: Platform
) -> None:
    operator()
    ns = cluster.namespace()
    _versions(cluster, ns, "bot-v1")
    scaling = {"minReplicas": 2, "maxReplicas": 5}
    cluster.create(
        in_ns(inference_deployment("bot", modelVersion="bot-v1", autoscaling=scaling), ns)
    )
    wait_for(
        "AutoscalingReady",
        lambda: _cond(cluster, ns, "AutoscalingReady") == ("False", "NoAutoscaler"),
    )
    assert _deployment(cluster, ns, "bot")["spec"]["replicas"] == 2
    idep = _idep(cluster, ns)
    assert idep["status"]["autoscaler"] == "none"
    assert "prometheus-adapter" in cluster.condition(idep, "AutoscalingReady")["message"]  # type: ignore[index]


def test_hpa_when_only_external_metrics_exist_and_the_operator_never_resets_its_replicas(
    cluster: Cluster, operator: Callable[..., OperatorThread], platform: Platform
) -> None:
    platform.register_external_metrics()
    wait_for(  # the aggregator lists the group though its backend does not answer
        "external.metrics.k8s.io in /apis",
        lambda: (
            "external.metrics.k8s.io"
            in [g["name"] for g in cluster.x.call("GET", "/apis")["groups"]]
        ),
    )
    operator()
    ns = cluster.namespace()
    _versions(cluster, ns, "bot-v1")
    scaling = {
        "minReplicas": 3,
        "maxReplicas": 6,
        "target": {"metric": "kvCacheUsage", "value": 80},
    }
    cluster.create(
        in_ns(inference_deployment("bot", modelVersion="bot-v1", autoscaling=scaling), ns)
    )
    hpa = wait_for(
        "HPA",
        lambda: cluster.x.call(
            "GET", f"/apis/autoscaling/v2beta2/namespaces/{ns}/horizontalpodautoscalers"
        )["items"],
    )[0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "bot"
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "InferenceDeployment"
    assert _cond(cluster, ns, "AutoscalingReady") == ("True", "HPA")
    # the operator's apply leaves replicas out: the Deployment starts at the API default (1),
    # then kube-controller-manager's HPA controller raises it to minReplicas
    wait_for(
        "HPA scaled to 3",
        lambda: _deployment(cluster, ns, "bot")["spec"]["replicas"] == 3,
        timeout=90,
    )
    managers = {
        m["manager"]
        for m in _deployment(cluster, ns, "bot")["metadata"]["managedFields"]
        if "f:replicas" in str(m.get("fieldsV1", {}).get("f:spec", {}))
    }
    assert "model-garden-operator" not in managers
    assert _reapply(cluster, ns, 2048)["spec"]["replicas"] == 3
    time.sleep(3)  # a few more reconciles (timer every second): still the autoscaler's count
    assert _deployment(cluster, ns, "bot")["spec"]["replicas"] == 3
    status = wait_for(
        "desiredReplicas",
        lambda: (s := _idep(cluster, ns)["status"]).get("desiredReplicas") == 3 and s,
    )
    assert status["autoscaler"] == "hpa"


def test_keda_is_picked_when_its_crd_is_there_and_its_replicas_stay(
    cluster: Cluster, operator: Callable[..., OperatorThread], platform: Platform
) -> None:
    platform.register_external_metrics()  # KEDA wins over the adapter
    platform.install("keda")
    operator()
    ns = cluster.namespace()
    _versions(cluster, ns, "bot-v1")
    scaling = {
        "minReplicas": 1,
        "maxReplicas": 4,
        "target": {"metric": "waitingRequests", "value": 2},
    }
    cluster.create(
        in_ns(inference_deployment("bot", modelVersion="bot-v1", autoscaling=scaling), ns)
    )
    so = wait_for(
        "ScaledObject",
        lambda: cluster.x.call("GET", f"/apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects")[
            "items"
        ],
    )[0]
    assert so["spec"]["triggers"][0]["metadata"]["serverAddress"] == PROM
    assert _cond(cluster, ns, "AutoscalingReady") == ("True", "KEDA")
    hpas = cluster.x.call(
        "GET", f"/apis/autoscaling/v2beta2/namespaces/{ns}/horizontalpodautoscalers"
    )
    assert hpas["items"] == []  # one autoscaler per Deployment
    wait_for("Deployment", lambda: _deployment(cluster, ns, "bot"))
    _scale(cluster, ns, "bot", 4)
    assert _reapply(cluster, ns, 4096)["spec"]["replicas"] == 4
    time.sleep(3)
    assert _deployment(cluster, ns, "bot")["spec"]["replicas"] == 4
    wait_for("desiredReplicas 4", lambda: _idep(cluster, ns)["status"].get("desiredReplicas") == 4)

    # the HTTP add-on appears: scale to zero with wake-up on request
    platform.install("keda-http")
    cluster.patch(
        API, "InferenceDeployment", ns, "bot", {"spec": {"autoscaling": {"minReplicas": 0}}}
    )
    hso = wait_for(
        "HTTPScaledObject",
        lambda: cluster.x.call(
            "GET", f"/apis/http.keda.sh/v1alpha1/namespaces/{ns}/httpscaledobjects"
        )["items"],
        timeout=30,
    )[0]
    assert hso["spec"]["scaleTargetRef"]["service"] == "bot"
    wait_for(
        "ScaledObject at 0",
        lambda: (
            cluster.x.call("GET", f"/apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects/bot")[
                "spec"
            ]["minReplicaCount"]
            == 0
        ),
    )
    assert _idep(cluster, ns)["status"]["autoscaler"] == "keda-http"

    # autoscaling removed: our ScaledObject and HTTPScaledObject go, replicas are fixed again
    cluster.patch(
        API, "InferenceDeployment", ns, "bot", {"spec": {"autoscaling": None, "replicas": 2}}
    )
    wait_for(
        "scalers deleted",
        lambda: (
            not cluster.x.call("GET", f"/apis/keda.sh/v1alpha1/namespaces/{ns}/scaledobjects")[
                "items"
            ]
            and not cluster.x.call(
                "GET", f"/apis/http.keda.sh/v1alpha1/namespaces/{ns}/httpscaledobjects"
            )["items"]
        ),
    )
    wait_for("fixed replicas", lambda: _deployment(cluster, ns, "bot")["spec"]["replicas"] == 2)


# --- traffic ---------------------------------------------------------------------------------------


def test_replica_weighted_split_and_promotion_without_the_gateway_api(
    cluster: Cluster, operator: Callable[..., OperatorThread], platform: Platform
) -> None:
    operator()
    ns = cluster.namespace()
    _versions(cluster, ns, "bot-v1", "bot-v2")
    traffic = [{"modelVersion": "bot-v1", "weight": 90}, {"modelVersion": "bot-v2", "weight": 10}]
    cluster.create(in_ns(inference_deployment("bot", traffic=traffic, replicas=10), ns))
    v1 = wait_for("bot-bot-v1", lambda: _deployment(cluster, ns, "bot-bot-v1"))
    v2 = wait_for("bot-bot-v2", lambda: _deployment(cluster, ns, "bot-bot-v2"))
    assert (v1["spec"]["replicas"], v2["spec"]["replicas"]) == (9, 1)
    svc = wait_for("Service", lambda: cluster.get("v1", "Service", ns, "bot"))
    assert svc["spec"]["selector"] == {IDEP_LABEL: "bot"}  # both versions' pods
    wait_for(
        "TrafficSplit", lambda: _cond(cluster, ns, "TrafficSplit") == ("True", "ReplicaWeighted")
    )
    assert _idep(cluster, ns)["status"]["trafficMode"] == "replicas"
    assert cluster.x.call("GET", "/apis").get("groups") is not None

    # promotion: one field change; v1 goes once v2 is Ready
    cluster.patch(
        API,
        "InferenceDeployment",
        ns,
        "bot",
        {"spec": {"traffic": [{"modelVersion": "bot-v2", "weight": 100}]}},
    )
    wait_for("v2 at 10", lambda: _deployment(cluster, ns, "bot-bot-v2")["spec"]["replicas"] == 10)
    wait_for(
        "Service on v2",
        lambda: (
            (cluster.get("v1", "Service", ns, "bot") or {})["spec"]["selector"].get(VERSION_LABEL)
            == "bot-v2"
        ),
    )
    assert _deployment(cluster, ns, "bot-bot-v1")  # kept while v2 is not Ready
    _play_ready(cluster, ns, f"{VERSION_LABEL}=bot-v2", 10)
    wait_for("v1 deleted", lambda: not _deployment(cluster, ns, "bot-bot-v1"), timeout=30)
    wait_for("Ready", lambda: _cond(cluster, ns, "Ready") == ("True", "Serving"))
    assert _idep(cluster, ns)["status"]["modelVersion"] == "bot-v2"


def test_httproute_weights_and_roll_back_on_a_version_that_never_gets_ready(
    cluster: Cluster, operator: Callable[..., OperatorThread], platform: Platform
) -> None:
    platform.install("httproute")
    operator(traffic_gateway={"name": "public", "namespace": "gateways"})
    ns = cluster.namespace()
    _versions(cluster, ns, "bot-v1", "bot-v2")
    cluster.create(in_ns(inference_deployment("bot", modelVersion="bot-v1", replicas=2), ns))
    wait_for("bot", lambda: _deployment(cluster, ns, "bot"))
    _play_ready(cluster, ns, f"{IDEP_LABEL}=bot", 2)
    wait_for("single Ready", lambda: _cond(cluster, ns, "Ready") == ("True", "Serving"))

    # canary: v1 keeps 80%, v2 gets 20% and 10 s to become Ready
    traffic = [{"modelVersion": "bot-v1", "weight": 80}, {"modelVersion": "bot-v2", "weight": 20}]
    cluster.patch(
        API,
        "InferenceDeployment",
        ns,
        "bot",
        {
            "spec": {
                "modelVersion": None,
                "traffic": traffic,
                "rollout": {"progressDeadlineSeconds": 10},
            }
        },
    )
    route = wait_for(
        "HTTPRoute",
        lambda: cluster.x.call(
            "GET", f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes"
        )["items"],
    )[0]
    backends = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert backends == {"bot-bot-v1": 80, "bot-bot-v2": 20}
    assert route["spec"]["parentRefs"][0]["name"] == "public"
    for name in backends:
        wait_for(f"Service {name}", lambda n=name: cluster.get("v1", "Service", ns, n))
    wait_for("TrafficSplit", lambda: _cond(cluster, ns, "TrafficSplit") == ("True", "HTTPRoute"))
    _play_ready(cluster, ns, f"{VERSION_LABEL}=bot-v1", 2)
    wait_for("old single Deployment gone", lambda: not _deployment(cluster, ns, "bot"), timeout=30)

    # v2's pods never get Ready: the Deployment controller gives up, the operator rolls back
    wait_for(
        "RolledBack",
        lambda: _cond(cluster, ns, "RolledBack") == ("True", "ProgressDeadlineExceeded"),
        timeout=60,
    )
    route = cluster.x.call(
        "GET", f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/bot"
    )
    backends = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
    assert backends == {"bot-bot-v1": 100, "bot-bot-v2": 0}
    time.sleep(5)  # reconciles every second meanwhile: the roll back holds (no flapping)
    route = cluster.x.call(
        "GET", f"/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/bot"
    )
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [100, 0]
    assert _cond(cluster, ns, "RolledBack") == ("True", "ProgressDeadlineExceeded")
    idep = _idep(cluster, ns)
    assert idep["spec"]["traffic"] == traffic  # the user's spec is not rewritten
    served = {t["modelVersion"]: (t["weight"], t["rolledBack"]) for t in idep["status"]["traffic"]}
    assert served == {"bot-v1": (100, False), "bot-v2": (0, True)}
    assert (cluster.get("v1", "Service", ns, "bot") or {})["spec"]["selector"][
        VERSION_LABEL
    ] == "bot-v1"


# --- least privilege -------------------------------------------------------------------------------


def _put(cluster: Cluster, doc: dict[str, Any]) -> None:
    """Create or replace a ClusterRole/ClusterRoleBinding of deploy/rbac."""
    plural = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}
    path = f"/apis/rbac.authorization.k8s.io/v1/{plural[doc['kind']]}"
    try:
        cluster.x.call("POST", path, doc)
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = cluster.x.call("GET", f"{path}/{doc['metadata']['name']}")
        doc = {
            **doc,
            "metadata": {
                **doc["metadata"],
                "resourceVersion": current["metadata"]["resourceVersion"],
            },
        }
        cluster.x.call("PUT", f"{path}/{doc['metadata']['name']}", doc)


def test_the_shipped_rbac_is_enough_for_autoscalers_routes_and_their_clean_up(
    kube_env: Any, cluster: Cluster, platform: Platform
) -> None:
    for what in ("keda", "keda-http", "httproute"):
        platform.install(what)
    for path in sorted(RBAC.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] != "ServiceAccount":  # made with its token below
                _put(cluster, doc)
    token = kube_env.service_account_token("model-garden-system", "model-garden-operator")
    sa_client = load_client(kube_env.token_kubeconfig(token, "operator-scaling"))
    op = OperatorThread(sa_client, settings(traffic_gateway={"name": "public"})).start()
    try:
        ns = cluster.namespace()
        _versions(cluster, ns, "bot-v1", "bot-v2")
        scaling = {"minReplicas": 0, "maxReplicas": 3}
        cluster.create(
            in_ns(inference_deployment("bot", modelVersion="bot-v1", autoscaling=scaling), ns)
        )
        traffic = [
            {"modelVersion": "bot-v1", "weight": 50},
            {"modelVersion": "bot-v2", "weight": 50},
        ]
        cluster.create(in_ns(inference_deployment("canary", traffic=traffic, replicas=2), ns))
        wait_for(
            "scalers",
            lambda: (
                cluster.get("keda.sh/v1alpha1", "ScaledObject", ns, "bot")
                and cluster.get("http.keda.sh/v1alpha1", "HTTPScaledObject", ns, "bot")
            ),
        )
        wait_for(
            "HTTPRoute",
            lambda: cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", ns, "canary"),
        )

        # clean-up: scalers deleted and replicas taken back by a patch; a promoted-away version
        cluster.patch(
            API, "InferenceDeployment", ns, "bot", {"spec": {"autoscaling": None, "replicas": 1}}
        )
        cluster.patch(
            API,
            "InferenceDeployment",
            ns,
            "canary",
            {"spec": {"traffic": [{"modelVersion": "bot-v2", "weight": 100}]}},
        )
        wait_for(
            "scalers gone", lambda: not cluster.get("keda.sh/v1alpha1", "ScaledObject", ns, "bot")
        )
        wait_for(
            "v2 at 2", lambda: _deployment(cluster, ns, "canary-bot-v2")["spec"]["replicas"] == 2
        )
        _play_ready(cluster, ns, f"{IDEP_LABEL}=canary,{VERSION_LABEL}=bot-v2", 2)
        wait_for("v1 gone", lambda: not _deployment(cluster, ns, "canary-bot-v1"), timeout=30)
        wait_for(
            "route on v2 only",
            lambda: (
                [
                    b["name"]
                    for b in (
                        cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", ns, "canary") or {}
                    )["spec"]["rules"][0]["backendRefs"]
                ]
                == ["canary-bot-v2"]
            ),
        )
        for name in ("bot", "canary"):
            assert cluster.condition(_idep(cluster, ns, name), "Conflict") is None
        assert op.metrics.errors.labels("InferenceDeployment")._value.get() == 0
    finally:
        op.stop()
