"""The CLI against a real kube-apiserver (and the operator in-process): the same command lines
as in local mode act on the cluster of the kubeconfig's context."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from envtest.test_operator import API, Cluster, model_version, operator_settings, wait_for
from model_garden.api.labels import LABEL_FTJ_UID
from model_garden.cli.errors import EXIT_NOT_FOUND
from model_garden.cli.main import cli
from model_garden.local.store import LocalStore
from model_garden.operator.runner import OperatorThread, load_client
from unit.cli.conftest import write_fake_runtime

pytestmark = pytest.mark.envtest

MANIFEST = """\
apiVersion: modelgarden.dev/v1alpha1
kind: FineTuneJob
metadata:
  name: {name}
spec:
  baseModel: {{hub: {{id: Qwen/Qwen2.5-0.5B-Instruct}}}}
  dataset: {{uri: "pvc://datasets/chat.jsonl"}}
  method: {{type: full}}
  hyperparameters: {{maxSteps: 4}}
  output: {{model: chat, storage: "pvc://artifacts", merge: true}}
  backoffLimit: 0
"""


@pytest.fixture(scope="module")
def cluster(kube_env: Any, crds_installed: list[str]) -> Cluster:
    return Cluster(kube_env.api_client)


@pytest.fixture()
def operator(kube_env: Any, crds_installed: list[str]) -> Iterator[OperatorThread]:
    op = OperatorThread(load_client(kube_env.kubeconfig), operator_settings())
    yield op.start()
    op.stop()


@pytest.fixture()
def mg(kube_env: Any, tmp_path: Path) -> Callable[..., Result]:
    env = {
        "KUBECONFIG": str(kube_env.kubeconfig),
        "MODEL_GARDEN_CONFIG": str(tmp_path / "config.yaml"),
        "MODEL_GARDEN_HOME": str(tmp_path / "home"),
    }

    def run(*args: str, **extra: str) -> Result:
        return CliRunner().invoke(cli, list(args), env={**env, **extra}, catch_exceptions=False)

    return run


def manifest(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(MANIFEST.format(name=name))
    return path


def test_train_f_creates_the_job_and_jobs_list_shows_it(
    cluster: Cluster, operator: OperatorThread, mg: Callable[..., Result], tmp_path: Path
) -> None:
    ns = cluster.namespace()
    created = mg("train", "-f", str(manifest(tmp_path, "tune")), "-n", ns)
    assert created.exit_code == 0, created.output
    assert f"finetunejob/tune created (context envtest, namespace {ns})" in created.stdout
    ftj = cluster.get(API, "FineTuneJob", ns, "tune")
    assert ftj is not None and ftj["spec"]["hyperparameters"]["maxSteps"] == 4
    wait_for("the operator's Job", lambda: cluster.get("batch/v1", "Job", ns, "tune-train"))
    listed = mg("jobs", "list", "-n", ns, "-o", "json")
    assert [i["metadata"]["name"] for i in json.loads(listed.stdout)["items"]] == ["tune"]
    table = mg("jobs", "list", "-n", ns).stdout.splitlines()
    assert table[-1].split()[:3] == ["tune", "Starting", "0/4"]
    again = mg("train", "-f", str(manifest(tmp_path, "tune")), "-n", ns)
    assert again.exit_code == 5 and "already exists" in again.stderr
    assert mg("jobs", "cancel", "tune", "-n", ns).exit_code == 0
    assert cluster.get(API, "FineTuneJob", ns, "tune")["spec"]["suspend"] is True  # type: ignore[index]
    assert mg("jobs", "get", "nope", "-n", ns).exit_code == EXIT_NOT_FOUND


def test_versions_promote_changes_the_stage(cluster: Cluster, mg: Callable[..., Result]) -> None:
    ns = cluster.namespace()
    body = model_version("chat-v1", "chat", 1)
    body["metadata"]["namespace"] = ns
    cluster.create(body)
    result = mg("versions", "promote", "chat-v1", "--stage", "production", "-n", ns)
    assert result.exit_code == 0, result.output
    assert "none → production" in result.stdout
    assert cluster.get(API, "ModelVersion", ns, "chat-v1")["spec"]["stage"] == "production"  # type: ignore[index]
    rows = mg("versions", "list", "-n", ns).stdout.splitlines()
    assert rows[-1].split()[:5] == ["chat-v1", "chat", "1", "merged", "production"]
    missing = mg("versions", "promote", "chat-v9", "-n", ns)
    assert (
        missing.exit_code == EXIT_NOT_FOUND and "ModelVersion chat-v9 not found" in missing.stderr
    )


def _normalised(mv: dict[str, Any]) -> dict[str, Any]:
    """A ModelVersion without what differs by where it was made: identity (uids, namespace),
    bookkeeping, status, and the storage URI's namespace folder."""
    out = copy.deepcopy(mv)
    out.pop("status", None)
    meta = out["metadata"]
    out["metadata"] = {"name": meta["name"], "labels": dict(meta.get("labels") or {})}
    out["metadata"]["labels"].pop(LABEL_FTJ_UID, None)
    out["spec"]["source"].pop("fineTuneJobUid", None)
    out["spec"]["artifact"]["uri"] = "/".join(out["spec"]["artifact"]["uri"].split("/")[-3:])
    return out


def test_a_version_made_locally_equals_the_operators(
    cluster: Cluster,
    operator: OperatorThread,
    mg: Callable[..., Result],
    tmp_path: Path,
) -> None:
    # local mode: the same manifest, the trainer stood in by the fake one (same result shape)
    home = tmp_path / "home"
    (home / "claims/datasets").mkdir(parents=True)
    (home / "claims/datasets/chat.jsonl").write_text('{"text": "hello"}\n')
    local = mg(
        "train",
        "--local",
        "-f",
        str(manifest(tmp_path, "twin")),
        "--wait",
        MODEL_GARDEN_RUNTIME_PYTHON=str(write_fake_runtime(tmp_path)),
        FAKE_TRAINER_SECONDS="0.5",
    )
    assert local.exit_code == 0, local.output
    store = LocalStore(home)
    local_mv = store.get("ModelVersion", "chat-v1")
    (pod,) = [p for p in store.list_raw("Pod") if p["metadata"]["labels"].get(LABEL_FTJ_UID)]
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]

    # the operator, the same manifest, and its trainer pod reporting the same result
    ns = cluster.namespace()
    assert mg("train", "-f", str(manifest(tmp_path, "twin")), "-n", ns).exit_code == 0
    (k8s_pod,) = wait_for("trainer pod", lambda: cluster.pods_of(ns, "twin-train"), timeout=30)
    cluster.play_kubelet(
        ns, k8s_pod, "Succeeded", exit_code=0, message=message.replace("/default/", f"/{ns}/")
    )
    theirs = wait_for("ModelVersion", lambda: cluster.get(API, "ModelVersion", ns, "chat-v1"))
    assert local_mv is not None
    assert _normalised(local_mv) == _normalised(theirs)
    assert local_mv["spec"]["artifact"]["uri"] == "pvc://artifacts/default/chat/v1/merged"
    assert theirs["spec"]["artifact"]["uri"] == f"pvc://artifacts/{ns}/chat/v1/merged"


def test_deploy_creates_the_inference_deployment(
    cluster: Cluster, mg: Callable[..., Result]
) -> None:
    ns = cluster.namespace()
    body = model_version("chat-v1", "chat", 1)
    body["metadata"]["namespace"] = ns
    cluster.create(body)
    cache = ("--model-cache", "pvc://model-cache/team")
    created = mg("deploy", "chat-v1", "-n", ns, "--max-model-len", "512", *cache)
    assert created.exit_code == 0, created.output
    idep = cluster.get(API, "InferenceDeployment", ns, "chat")
    assert idep is not None
    assert idep["spec"]["modelVersion"] == "chat-v1"
    assert idep["spec"]["engine"]["maxModelLen"] == 512
    assert idep["spec"]["modelCache"] == "pvc://model-cache/team"
    bad = mg("deploy", "chat-v1", "--name", "other", "-n", ns, "--model-cache", "s3://b/c")
    assert bad.exit_code != 0 and "spec.modelCache" in bad.output
    assert cluster.get(API, "InferenceDeployment", ns, "other") is None
    listed = json.loads(mg("deployments", "list", "-n", ns, "-o", "json").stdout)["items"]
    assert [d["metadata"]["name"] for d in listed] == ["chat"]
    assert mg("deployments", "delete", "chat", "-n", ns).exit_code == 0
    wait_for("deleted", lambda: cluster.get(API, "InferenceDeployment", ns, "chat") is None)
    assert mg("deploy", "nope-v1", "-n", ns).exit_code == EXIT_NOT_FOUND


def test_deployments_scale_goes_through_the_scale_subresource(
    cluster: Cluster, mg: Callable[..., Result]
) -> None:
    ns = cluster.namespace()
    cluster.create({**inference_deployment_in(ns, "bot"), "spec": {"modelVersion": "chat-v1"}})
    scaled = mg("deployments", "scale", "bot", "--replicas", "3", "-n", ns)
    assert scaled.exit_code == 0, scaled.output
    assert scaled.stdout.strip() == "inferencedeployment/bot scaled 1 → 3 replicas"
    assert cluster.get(API, "InferenceDeployment", ns, "bot")["spec"]["replicas"] == 3  # type: ignore[index]
    # what an autoscaler (or kubectl scale) reads: the /scale subresource itself
    scale = cluster.x.call("GET", f"/apis/{API}/namespaces/{ns}/inferencedeployments/bot/scale")
    assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", 3)
    missing = mg("deployments", "scale", "nope", "--replicas", "1", "-n", ns)
    assert missing.exit_code == EXIT_NOT_FOUND


def inference_deployment_in(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": ns},
    }


def test_carbon_report_reads_the_clusters_status(
    cluster: Cluster, mg: Callable[..., Result]
) -> None:
    ns = cluster.namespace()
    body = model_version("chat-v1", "chat", 1)
    body["metadata"]["namespace"] = ns
    body["spec"]["trainingCarbon"] = {"energyKwh": "0.5", "emissionsKg": "0.25"}
    cluster.create(body)
    cluster.create({**inference_deployment_in(ns, "bot"), "spec": {"modelVersion": "chat-v1"}})
    share = {"modelVersion": "chat-v1", "energyKwh": 1.0, "emissionsKg": 0.5, "tokens": 200}
    carbon = {"energyKwh": 1.0, "emissionsKg": 0.5, "tokens": 200, "byModelVersion": [share]}
    cluster.patch(API, "InferenceDeployment", ns, "bot", {"status": {"carbon": carbon}}, "status")
    report = mg("carbon", "report", "--by", "deployment", "-n", ns, "-o", "json")
    assert report.exit_code == 0, report.output
    doc = json.loads(report.stdout)
    assert {r["key"]: r["emissions_kg"] for r in doc["rows"]} == {"bot": 0.5, None: 0.25}
    assert doc["total"]["emissions_kg"] == 0.75 and doc["total"]["tokens"] == 200
    by_version = mg("carbon", "report", "-n", ns, "-o", "csv").stdout.splitlines()
    assert by_version[1].startswith("chat-v1,2,1.5,0.75,0.25,0.5,200")


def test_crds_install_creates_then_replaces_and_they_serve(
    kube_env: Any,
    crds_installed: list[str],
    mg: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubernetes import client

    from model_garden.api.crdgen import all_crds
    from model_garden.cli import crds as crds_cli

    # the session's CRDs exist: each is replaced by the generated one
    replaced = mg("crds", "install", "--timeout", "60")
    assert replaced.exit_code == 0, replaced.output
    lines = replaced.stdout.splitlines()
    assert [line for line in lines if line.endswith(" replaced")] == [
        f"customresourcedefinition/{name} replaced" for name in crds_installed
    ]
    assert lines[-1] == "3 CRDs Established (without CEL rules) on context envtest"  # 1.20: no CEL

    # one that does not exist yet is created (a copy in another group: the session's CRDs stay)
    crd = copy.deepcopy(all_crds()[0])
    plural = crd["spec"]["names"]["plural"]
    crd["spec"]["group"] = "cli-test.modelgarden.dev"
    crd["metadata"]["name"] = f"{plural}.cli-test.modelgarden.dev"
    monkeypatch.setattr(crds_cli, "all_crds", lambda: [crd])
    created = mg("crds", "install", "--no-cel")
    assert created.exit_code == 0, created.output
    assert f"customresourcedefinition/{plural}.cli-test.modelgarden.dev created" in created.stdout
    ext = client.ApiextensionsV1Api(kube_env.api_client)
    served = ext.read_custom_resource_definition(crd["metadata"]["name"])
    assert any(c.type == "Established" and c.status == "True" for c in served.status.conditions)
    ext.delete_custom_resource_definition(crd["metadata"]["name"])
    local = mg("crds", "install", "--local")
    assert local.exit_code == 2 and "acts on a cluster" in local.stderr
