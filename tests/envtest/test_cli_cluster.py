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
    created = mg("deploy", "chat-v1", "-n", ns, "--max-model-len", "512")
    assert created.exit_code == 0, created.output
    idep = cluster.get(API, "InferenceDeployment", ns, "chat")
    assert idep is not None
    assert idep["spec"]["modelVersion"] == "chat-v1"
    assert idep["spec"]["engine"]["maxModelLen"] == 512
    listed = json.loads(mg("deployments", "list", "-n", ns, "-o", "json").stdout)["items"]
    assert [d["metadata"]["name"] for d in listed] == ["chat"]
    assert mg("deployments", "delete", "chat", "-n", ns).exit_code == 0
    wait_for("deleted", lambda: cluster.get(API, "InferenceDeployment", ns, "chat") is None)
    assert mg("deploy", "nope-v1", "-n", ns).exit_code == EXIT_NOT_FOUND
