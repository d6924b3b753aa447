"""The chart on a real Kubernetes 1.20 API server (envtest): `helm install` of a namespaced
install, the operator running as the chart's ServiceAccount with the chart's settings (it
reconciles in a watched namespace, ignores and may not touch an unwatched one), `helm upgrade`
and `helm uninstall` (claims and CRDs stay)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from envtest.test_operator import Cluster, finetunejob, in_ns, wait_for
from harness import envtest
from model_garden.operator.runner import OperatorThread, load_client
from model_garden.operator.settings import OperatorSettings

from .render import CHART, NAMESPACE, helm

pytestmark = [pytest.mark.chart, pytest.mark.envtest]

WATCHED = ("team-a", "team-b")
VALUES = str(CHART / "ci" / "namespaced-values.yaml")


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[envtest.KubeEnv]:
    with envtest.running(tmp_path_factory.mktemp("envtest-chart")) as env:
        core = client.CoreV1Api(env.api_client)
        for ns in (*WATCHED, "team-c"):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        yield env


def _helm(env: envtest.KubeEnv, *args: str) -> str:
    proc = helm(*args, "--kubeconfig", str(env.kubeconfig))
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _operator_env(admin: Cluster) -> dict[str, str]:
    dep = admin.get("apps/v1", "Deployment", NAMESPACE, "mg-model-garden-operator")
    assert dep is not None
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_install_run_upgrade_uninstall_on_kubernetes_1_20(
    kube: envtest.KubeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = Cluster(kube.api_client)
    # Before 1.25 the API server has no CEL: server-side apply (Helm 4's default) refuses the CRDs'
    # x-kubernetes-validations, a client-side create stores them without (docs/chart.md).
    _helm(kube, "install", "mg", str(CHART), "-n", NAMESPACE, "--create-namespace", "-f", VALUES,
          "--server-side=false")  # fmt: skip

    ext = client.ApiextensionsV1Api(kube.api_client)
    crds = {c.metadata.name for c in ext.list_custom_resource_definition().items if c.metadata}
    assert {"finetunejobs.modelgarden.dev", "modelversions.modelgarden.dev"} <= crds
    for ns in WATCHED:
        rbac = client.RbacAuthorizationV1Api(kube.api_client)
        assert rbac.read_namespaced_role("mg-model-garden-operator", ns).rules
        assert admin.get("v1", "PersistentVolumeClaim", ns, "model-garden-artifacts")
    assert admin.get("v1", "ConfigMap", NAMESPACE, "model-garden-policy")

    # The operator as the pod would run it: the chart's settings, the chart's ServiceAccount.
    for name, value in _operator_env(admin).items():
        monkeypatch.setenv(name, value)
    settings = OperatorSettings().model_copy(
        update={
            "resync_seconds": 2,
            "metrics_port": 0,
            "health_port": 0,
            "progress_poll_seconds": 1,
        }
    )
    assert settings.namespaces == list(WATCHED)
    token = kube.service_account_token(NAMESPACE, "mg-model-garden-operator")
    sa_client = load_client(kube.token_kubeconfig(token, "chart-operator"))
    op = OperatorThread(sa_client, settings).start()
    try:
        admin.create(in_ns(finetunejob("tune"), "team-a"))
        admin.create(in_ns(finetunejob("tune"), "team-c"))
        job = wait_for(
            "Job in team-a", lambda: admin.get("batch/v1", "Job", "team-a", "tune-train")
        )
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == (
            "ghcr.io/model-garden/trainer:0.1.0"
        )
        time.sleep(4)  # two resync periods: an unwatched namespace stays untouched
        assert admin.get("batch/v1", "Job", "team-c", "tune-train") is None
        with pytest.raises(ApiException) as denied:
            client.BatchV1Api(sa_client).list_namespaced_job("team-c")
        assert denied.value.status == 403
        assert op.metrics.errors.labels("FineTuneJob")._value.get() == 0
    finally:
        op.stop()

    _helm(kube, "upgrade", "mg", str(CHART), "-n", NAMESPACE, "-f", VALUES,
          "--set", "workloads.trainer.cpu=3", "--server-side=false")  # fmt: skip
    assert _operator_env(admin)["MODEL_GARDEN_OPERATOR_TRAINER_CPU"] == "3"
    assert admin.get("batch/v1", "Job", "team-a", "tune-train"), "children survive an upgrade"

    _helm(kube, "uninstall", "mg", "-n", NAMESPACE)
    wait_for(
        "operator Deployment gone",
        lambda: admin.get("apps/v1", "Deployment", NAMESPACE, "mg-model-garden-operator") is None,
    )
    for ns in WATCHED:
        assert admin.get("v1", "PersistentVolumeClaim", ns, "model-garden-artifacts"), "kept"
    assert "finetunejobs.modelgarden.dev" in {
        c.metadata.name for c in ext.list_custom_resource_definition().items if c.metadata
    }
    assert admin.get("modelgarden.dev/v1alpha1", "FineTuneJob", "team-a", "tune")
