"""A multi-node FineTuneJob followed through its TrainJob (or JobSet) on a real kube-apiserver.

The API server holds the vendored Kubeflow Trainer TrainJob and JobSet CRDs (CEL stripped:
1.20 has no CEL), so what the operator creates is validated by the server's own structural
schema. No Trainer or JobSet controller can run here (no registry to pull them from, no
kubelet in envtest), so the test plays them, as envtest users play the Job controller: it
writes the node pods a JobSet makes (JobSet's labels, the runtime patch's labels, a
terminated container with the trainer's message) and the workload's completion condition.
The operator acts as its ServiceAccount bound to the shipped RBAC (deploy/rbac, the chart's
rules), so the rules on trainjobs and jobsets are proven enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from crd_schemas.multinode import FILES, for_envtest
from envtest.test_operator import (
    API,
    Cluster,
    finetunejob,
    in_ns,
    operator_settings,
    result_message,
    wait_for,
)
from model_garden.operator.discovered import get_or_none
from model_garden.operator.finetunejob import workload
from model_garden.operator.runner import OperatorThread, load_client

pytestmark = pytest.mark.envtest

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac"
RBAC_PATHS = {
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
}

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CRD_NAMES = {"TrainJob": "trainjobs.trainer.kubeflow.org", "JobSet": "jobsets.jobset.x-k8s.io"}


def _gone(cluster: Cluster, name: str) -> bool:
    return get_or_none(cluster.x.call, f"{CRD_PATH}/{name}") is None


def _established(cluster: Cluster, name: str) -> bool:
    crd = cluster.x.call("GET", f"{CRD_PATH}/{name}")
    return any(
        c["type"] == "Established" and c["status"] == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


@pytest.fixture()
def engine_crds(kube_env: Any, crds_installed: list[str]) -> Iterator[Callable[[str], None]]:
    """Install the vendored CRD of a kind (waiting out an earlier test's deletion of it);
    every CRD installed is deleted at the end, and gone before the next test starts, so later
    tests (discovery's among them) see a cluster without them."""
    cluster = Cluster(kube_env.api_client)
    installed: list[str] = []

    def install(kind: str) -> None:
        group = next(g for g, k in FILES if k == kind)
        crd = for_envtest(group, kind)
        name = crd["metadata"]["name"]
        wait_for(f"{name} absent", lambda: _gone(cluster, name), timeout=30)
        cluster.x.call("POST", CRD_PATH, crd)
        installed.append(name)
        wait_for(f"{name} Established", lambda: _established(cluster, name))

    yield install
    for name in installed:
        cluster.x.call("DELETE", f"{CRD_PATH}/{name}")
    for name in installed:
        wait_for(f"{name} deleted", lambda name=name: _gone(cluster, name), timeout=30)


def operator_as_shipped_rbac(kube_env: Any) -> Any:
    """An API client acting as the operator's ServiceAccount, bound to deploy/rbac only (the
    chart's rules: a test keeps them equal), written over any older copy."""
    admin = Cluster(kube_env.api_client)
    token = kube_env.service_account_token("model-garden-system", "model-garden-operator")
    for path in sorted(RBAC.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] not in RBAC_PATHS:
                continue
            collection = RBAC_PATHS[doc["kind"]]
            try:
                admin.x.call("POST", collection, doc)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                url = f"{collection}/{doc['metadata']['name']}"
                current = admin.x.call("GET", url)
                doc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                admin.x.call("PUT", url, doc)
    return load_client(kube_env.token_kubeconfig(token, "operator"))


def node_pod(ns: str, obj: dict[str, Any], index: int, container: str) -> dict[str, Any]:
    """The pod JobSet makes for node ``index``: the pod template's labels (for a TrainJob, the
    runtime patch's) plus JobSet's own."""
    kind = obj["kind"]
    if kind == "TrainJob":
        (patch,) = obj["spec"]["runtimePatches"]
        (rj,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    else:
        (rj,) = obj["spec"]["replicatedJobs"]
    labels = dict(rj["template"]["spec"]["template"]["metadata"]["labels"])
    name = obj["metadata"]["name"]
    labels.update({workload.JOBSET_NAME_LABEL: name, workload.JOB_INDEX_LABEL: str(index)})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{name}-node-{index}-0-abcde", "namespace": ns, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [{"name": container, "image": "trainer"}],
        },
    }


@pytest.mark.parametrize(("kind", "container"), [("TrainJob", "node"), ("JobSet", "trainer")])
def test_multinode_job_runs_through_its_engine_to_a_model_version(
    kube_env: Any, engine_crds: Callable[[str], None], kind: str, container: str
) -> None:
    started = time.monotonic()
    cluster = Cluster(kube_env.api_client)
    engine_crds(kind)
    op = OperatorThread(operator_as_shipped_rbac(kube_env), operator_settings()).start()
    try:
        ns = cluster.namespace()
        cluster.create(in_ns(finetunejob("tune", nodes=2), ns))
        path = workload.path(kind, ns, "tune-train")
        obj = wait_for(kind, lambda: _get(cluster, path))
        ftj = cluster.get(API, "FineTuneJob", ns, "tune")
        assert ftj is not None
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == (
            "FineTuneJob",
            ftj["metadata"]["uid"],
            True,
        )
        assert cluster.get("v1", "ConfigMap", ns, "tune-train-config") is not None
        status = wait_for(
            "status naming the workload",
            lambda: (
                (f := cluster.get(API, "FineTuneJob", ns, "tune"))
                and (f.get("status") or {}).get("workloadKind") == kind
                and f["status"]
            ),
        )
        assert status["jobName"] == "tune-train"

        # play the engine: node 1 finished without a result, node 0 with the trainer's
        for index, message in ((1, ""), (0, result_message())):
            pod = node_pod(ns, obj, index, container)
            cluster.create(pod)
            cluster.play_kubelet(
                ns, pod, "Succeeded", exit_code=0, message=message, container=container
            )
        done = "Complete" if kind == "TrainJob" else "Completed"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        condition = {
            "type": done,
            "status": "True",
            "reason": done,
            "message": "all nodes finished",
            "lastTransitionTime": now,
        }
        cluster.x.call(
            "PATCH",
            f"{path}/status",
            {"status": {"conditions": [condition]}},
            content_type="application/merge-patch+json",
        )
        succeeded = wait_for(
            "Succeeded",
            lambda: (
                (f := cluster.get(API, "FineTuneJob", ns, "tune"))
                and (cluster.condition(f, "Succeeded") or {}).get("status") == "True"
                and f
            ),
        )
        assert succeeded["status"]["modelVersion"] == "chat-v1"
        assert (cluster.condition(succeeded, "Failed") or {}).get("status") == "False"
        assert succeeded["status"]["progress"]["step"] == 10  # node 0's result
        mv = cluster.get(API, "ModelVersion", ns, "chat-v1")
        assert (
            mv is not None and mv["spec"]["artifact"]["uri"] == "pvc://artifacts/t/chat/v1/adapter"
        )
        assert op.metrics.errors.labels("FineTuneJob")._value.get() == 0

        # deleting the FineTuneJob takes its workload with it (ownerReferences, the GC)
        cluster.delete(API, "FineTuneJob", ns, "tune")
        wait_for(f"{kind} garbage-collected", lambda: _get(cluster, path) is None, timeout=45)
    finally:
        op.stop()
    assert time.monotonic() - started < 90


def _get(cluster: Cluster, path: str) -> dict[str, Any] | None:
    try:
        return dict(cluster.x.call("GET", path))
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            return None
        raise
