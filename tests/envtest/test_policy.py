"""The admin policy and the serving exposure, wired into a running operator (issue 8, items 10
and 11), against a real kube-apiserver.

Each test runs its own operator whose policy ConfigMap lives in a namespace of its own, so the
policy installed here never reaches the other envtest modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from envtest.test_operator import (
    API,
    Cluster,
    finetunejob,
    in_ns,
    inference_deployment,
    model_version,
    operator_settings,
    wait_for,
)
from model_garden.operator.runner import OperatorThread, load_client

pytestmark = pytest.mark.envtest

POLICY = "model-garden-policy"


@pytest.fixture(scope="module")
def cluster(kube_env: Any, crds_installed: list[str]) -> Cluster:
    return Cluster(kube_env.api_client)


@pytest.fixture()
def start_operator(kube_env: Any, crds_installed: list[str]) -> Iterator[Callable[[str], None]]:
    """Start an operator reading its policy from ``policy_namespace`` (re-read at every pass)."""
    started: list[OperatorThread] = []

    def start(policy_namespace: str) -> None:
        settings = operator_settings().model_copy(
            update={"policy_namespace": policy_namespace, "policy_cache_seconds": 0}
        )
        op = OperatorThread(load_client(kube_env.kubeconfig), settings)
        started.append(op)
        op.start()

    yield start
    for op in started:
        op.stop()


def _policy(ns: str, text: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": POLICY, "namespace": ns},
        "data": {"policy.yaml": text},
    }


def _condition(cluster: Cluster, kind: str, ns: str, name: str, type: str) -> dict[str, Any] | None:
    return cluster.condition(cluster.get(API, kind, ns, name), type)


def _refused(cluster: Cluster, kind: str, ns: str, name: str, type: str) -> Any:
    return wait_for(
        f"{name} refused by the policy",
        lambda: (
            (c := _condition(cluster, kind, ns, name, type))
            and c["reason"] == "PolicyRefused"
            and c
        ),
    )


def test_policy_refuses_what_it_does_not_allow_and_follows_its_configmap(
    cluster: Cluster, start_operator: Callable[[str], None]
) -> None:
    policy_ns, ns = cluster.namespace(), cluster.namespace()
    start_operator(policy_ns)

    # No ConfigMap: the documented default refuses a flag that runs remote code.
    cluster.create(
        in_ns(
            inference_deployment(
                "risky", modelVersion="x-v1", engine={"extraArgs": ["--trust-remote-code"]}
            ),
            ns,
        )
    )
    ready = _refused(cluster, "InferenceDeployment", ns, "risky", "Ready")
    assert "spec.engine.extraArgs[0] '--trust-remote-code'" in ready["message"]
    assert "deniedExtraArgs" in ready["message"]
    assert f"the default policy: no ConfigMap {policy_ns}/{POLICY}" in ready["message"]
    assert cluster.get("apps/v1", "Deployment", ns, "risky") is None

    # An installed policy allows images under registry.team/ only.
    cluster.create(_policy(policy_ns, "allowedImagePrefixes: ['registry.team/']\n"))
    cluster.create(in_ns(finetunejob("bad", image="evil.example/miner:1"), ns))
    running = _refused(cluster, "FineTuneJob", ns, "bad", "Running")
    assert "spec.image 'evil.example/miner:1'" in running["message"]
    assert f"allowedImagePrefixes (ConfigMap {policy_ns}/{POLICY})" in running["message"]
    # A job it allows starts (created after the refused one: several passes have run since).
    cluster.create(in_ns(finetunejob("good", image="registry.team/trainer:1"), ns))
    wait_for("allowed job's Job", lambda: cluster.get("batch/v1", "Job", ns, "good-train"))
    assert cluster.get("batch/v1", "Job", ns, "bad-train") is None
    assert cluster.get("v1", "ConfigMap", ns, "bad-train-config") is None
    refusals = [
        e
        for e in cluster.list("v1", "Event", ns)
        if e["reason"] == "PolicyRefused" and e["involvedObject"]["name"] == "bad"
    ]
    assert len(refusals) == 1, refusals  # said once, not at every pass

    # The admin widens the policy: the next pass starts the refused job.
    cluster.patch(
        "v1",
        "ConfigMap",
        policy_ns,
        POLICY,
        {"data": {"policy.yaml": "allowedImagePrefixes: ['registry.team/', 'evil.example/']\n"}},
    )
    job = wait_for("refused job started", lambda: cluster.get("batch/v1", "Job", ns, "bad-train"))
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "evil.example/miner:1"

    # A policy that does not parse refuses every new resource (fail closed), naming the key.
    cluster.patch("v1", "ConfigMap", policy_ns, POLICY, {"data": {"policy.yaml": "maxGpus: 1"}})
    cluster.create(in_ns(finetunejob("later"), ns))
    running = _refused(cluster, "FineTuneJob", ns, "later", "Running")
    assert f"ConfigMap {policy_ns}/{POLICY} key policy.yaml" in running["message"]
    assert cluster.get("batch/v1", "Job", ns, "later-train") is None


def test_server_pods_get_the_key_by_env_and_file_behind_a_network_policy(
    cluster: Cluster, start_operator: Callable[[str], None]
) -> None:
    policy_ns, ns = cluster.namespace(), cluster.namespace()
    start_operator(policy_ns)
    cluster.create(in_ns(model_version("m-v1", "m", 1), ns))
    cluster.verify(ns, "m-v1")
    peers = [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]
    cluster.create(
        in_ns(
            inference_deployment(
                "m",
                modelVersion="m-v1",
                apiKeySecret={"name": "key"},
                networkPolicy={"allowFrom": peers},
            ),
            ns,
        )
    )
    dep = wait_for("Deployment", lambda: cluster.get("apps/v1", "Deployment", ns, "m"))
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert {
        "name": "MODEL_GARDEN_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "key", "key": "token"}},
    } in c["env"]
    key_mount = next(m for m in c["volumeMounts"] if m["name"] == "api-key")
    assert key_mount["readOnly"] and key_mount["mountPath"] == "/etc/model-garden-api-key"
    assert (
        next(v for v in pod["volumes"] if v["name"] == "api-key")["secret"]["secretName"] == "key"
    )
    assert c["resources"]["requests"]["ephemeral-storage"] == "10Gi"

    netpol = wait_for(
        "NetworkPolicy", lambda: cluster.get("networking.k8s.io/v1", "NetworkPolicy", ns, "m")
    )
    idep = cluster.get(API, "InferenceDeployment", ns, "m")
    assert idep is not None
    assert netpol["metadata"]["ownerReferences"][0]["uid"] == idep["metadata"]["uid"]
    assert netpol["spec"]["ingress"][0]["from"] == peers
    # Deleted by someone: the operator puts it back (it watches its NetworkPolicies).
    cluster.delete("networking.k8s.io/v1", "NetworkPolicy", ns, "m")
    wait_for(
        "NetworkPolicy restored",
        lambda: (
            (p := cluster.get("networking.k8s.io/v1", "NetworkPolicy", ns, "m"))
            and p["metadata"]["uid"] != netpol["metadata"]["uid"]
        ),
    )
    # Disabled in the spec: it goes.
    cluster.patch(
        API, "InferenceDeployment", ns, "m", {"spec": {"networkPolicy": {"enabled": False}}}
    )
    wait_for(
        "NetworkPolicy deleted",
        lambda: cluster.get("networking.k8s.io/v1", "NetworkPolicy", ns, "m") is None,
    )
