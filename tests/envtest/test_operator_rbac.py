"""The operator as a ServiceAccount bound only to deploy/rbac: the whole flow passes, the rest is denied."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from envtest.test_operator import (
    API,
    Cluster,
    finetunejob,
    in_ns,
    operator_settings,
    result_message,
    wait_for,
)
from model_garden.api.labels import FINALIZER_IN_USE
from model_garden.operator.runner import OperatorThread, load_client

pytestmark = pytest.mark.envtest

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac"


def test_operator_with_shipped_rbac_runs_the_whole_flow(
    kube_env: Any, crds_installed: list[str]
) -> None:
    admin = Cluster(kube_env.api_client)
    token = kube_env.service_account_token("model-garden-system", "model-garden-operator")
    for path in sorted(RBAC.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] != "ServiceAccount":  # made with its token above
                _create(admin, doc)
    sa_client = load_client(kube_env.token_kubeconfig(token, "operator"))
    op = OperatorThread(sa_client, operator_settings()).start()
    try:
        ns = admin.namespace()
        admin.create(in_ns(finetunejob("tune"), ns))
        wait_for("Job", lambda: admin.get("batch/v1", "Job", ns, "tune-train"))
        (pod,) = wait_for("pod", lambda: admin.pods_of(ns, "tune-train"), timeout=30)
        admin.play_kubelet(ns, pod, "Succeeded", exit_code=0, message=result_message())
        admin.verify(ns, "chat-v1", size=4096)  # the verification Job, run as this identity
        mv = wait_for(
            "Ready ModelVersion",
            lambda: (
                (m := admin.get(API, "ModelVersion", ns, "chat-v1"))
                and (admin.condition(m, "Ready") or {}).get("status") == "True"
                and m
            ),
            timeout=30,
        )
        assert FINALIZER in mv["metadata"]["finalizers"]
        admin.create(
            in_ns(
                {
                    "apiVersion": API,
                    "kind": "InferenceDeployment",
                    "metadata": {"name": "bot"},
                    "spec": {"modelVersion": "chat-v1"},
                },
                ns,
            )
        )
        wait_for("Deployment", lambda: admin.get("apps/v1", "Deployment", ns, "bot"))
        wait_for("Service", lambda: admin.get("v1", "Service", ns, "bot"))
        events = admin.list("v1", "Event", ns)
        assert {"JobCreated", "ModelVersionCreated", "Verified", "DeploymentCreated"} <= {
            e["reason"] for e in events
        }
        for kind in ("FineTuneJob", "ModelVersion", "InferenceDeployment"):
            assert op.metrics.errors.labels(kind)._value.get() == 0, kind

        # outside the shipped RBAC: denied
        sa = Cluster(sa_client)
        for attempt in (
            lambda: sa.x.call("GET", f"/api/v1/namespaces/{ns}/secrets"),
            lambda: sa.delete("v1", "Pod", ns, pod["metadata"]["name"]),
            lambda: sa.x.call(
                "POST",
                "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                {"metadata": {"name": "x"}, "rules": []},
            ),
        ):
            with pytest.raises(ApiException) as denied:
                attempt()
            assert denied.value.status == 403
    finally:
        op.stop()


FINALIZER = FINALIZER_IN_USE


def _create(admin: Cluster, doc: dict[str, Any]) -> None:
    path = {
        "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    }[doc["kind"]]
    try:
        admin.x.call("POST", path, doc)
    except ApiException as exc:
        if exc.status != 409:
            raise
