"""The CRDs on a real kube-apiserver: they install, samples apply with defaults, bad input is refused."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from harness.envtest import REPO, KubeEnv
from harness.invalid_cases import CASES, Case
from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.common import CarbonReport
from model_garden.api.display import format_emissions, planned_total_steps, round_loss
from model_garden.api.finetunejob import TrainingCarbonStatus
from model_garden.api.registry import KINDS_BY_NAME

pytestmark = pytest.mark.envtest
SAMPLES = sorted((REPO / "crds" / "samples").rglob("*.yaml"))
MODELS = {
    "FineTuneJob": FineTuneJob,
    "ModelVersion": ModelVersion,
    "InferenceDeployment": InferenceDeployment,
}


def custom(kube_env: KubeEnv) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_env.api_client)


def create(kube_env: KubeEnv, body: dict[str, Any], namespace: str) -> dict[str, Any]:
    kind = KINDS_BY_NAME[body["kind"]]
    return custom(kube_env).create_namespaced_custom_object(  # type: ignore[no-any-return]
        "modelgarden.dev", "v1alpha1", namespace, kind.plural, body
    )


def ensure_namespace(kube_env: KubeEnv, name: str) -> str:
    core = client.CoreV1Api(kube_env.api_client)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as exc:
        if exc.status != 409:
            raise
    return name


def prune_empty(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: prune_empty(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [prune_empty(v) for v in value]
    return value


def test_crds_are_established(crds_installed: list[str]) -> None:
    assert sorted(crds_installed) == [
        "finetunejobs.modelgarden.dev",
        "inferencedeployments.modelgarden.dev",
        "modelversions.modelgarden.dev",
    ]


def custom_resource_docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in SAMPLES:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["apiVersion"].startswith("modelgarden.dev/"):
                docs.append((str(path.relative_to(REPO / "crds" / "samples")), doc))
    return docs


@pytest.mark.parametrize(
    ("name", "body"), custom_resource_docs(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_sample_applies_and_reads_back_with_the_models_defaults(
    kube_env: KubeEnv, crds_installed: list[str], name: str, body: dict[str, Any]
) -> None:
    namespace = ensure_namespace(kube_env, "samples")
    created = create(kube_env, body, namespace)
    kind = KINDS_BY_NAME[body["kind"]]
    read = custom(kube_env).get_namespaced_custom_object(
        "modelgarden.dev", "v1alpha1", namespace, kind.plural, body["metadata"]["name"]
    )
    assert read["metadata"]["uid"] == created["metadata"]["uid"]
    # The API server's defaulting and the models' defaults agree, field for field.
    expected = MODELS[body["kind"]].model_validate(body).spec.to_wire()
    assert prune_empty(read["spec"]) == prune_empty(expected)


def test_defaults_are_filled_in_by_the_api_server(
    kube_env: KubeEnv, crds_installed: list[str]
) -> None:
    namespace = ensure_namespace(kube_env, "defaults")
    body = yaml.safe_load((REPO / "crds/samples/finetunejob-minimal.yaml").read_text())
    spec = create(kube_env, body, namespace)["spec"]
    assert spec["method"] == {
        "type": "lora",
        "lora": {"rank": 16, "alpha": 32, "dropout": "0.05", "targetModules": ["all-linear"]},
    }
    assert spec["hyperparameters"]["learningRate"] == "2e-4"
    assert spec["dataset"]["format"] == "auto" and spec["backend"] == "auto"
    assert spec["checkpointing"] == {"everySteps": 100, "keep": 2, "keepAfterSuccess": False}


@pytest.mark.parametrize("case", [c for c in CASES if c.apiserver], ids=lambda c: c.id)
def test_api_server_refuses_invalid_resource_naming_the_field(
    kube_env: KubeEnv, crds_installed: list[str], case: Case
) -> None:
    namespace = ensure_namespace(kube_env, "invalid")
    body = dict(case.body, metadata={**case.body["metadata"]})
    with pytest.raises(ApiException) as err:
        create(kube_env, body, namespace)
    assert err.value.status == 422, err.value.body
    assert case.field in err.value.body, err.value.body


def kube_tools() -> Path:
    out = (
        subprocess.run(
            ["bash", str(REPO / "scripts/fetch-kube-tools.sh")],
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return Path(out)


def test_kubectl_applies_crds_and_samples_and_shows_printer_columns(
    kube_env: KubeEnv, tmp_path: Path
) -> None:
    kubectl = str(kube_tools() / "kubectl")
    env = {**os.environ, "KUBECONFIG": str(kube_env.kubeconfig)}

    def run(*args: str) -> str:
        proc = subprocess.run([kubectl, *args], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    run("create", "namespace", "kubectl-demo")
    run("apply", "--validate=false", "-f", str(REPO / "crds"))
    run("wait", "--for=condition=Established", "crd", "--all", "--timeout=30s")
    for sample in SAMPLES:
        run("apply", "--validate=false", "-n", "kubectl-demo", "-f", str(sample))
    table = run("get", "ftj,mv,idep", "-n", "kubectl-demo")
    print(table)
    assert "support-bot-qlora" in table and "support-bot-v1" in table and "imported" in table
    for column in (
        "SUCCEEDED",
        "STEP",
        "TOTAL",
        "MODEL",
        "VERSION",
        "STAGE",
        "READY",
        "ENDPOINT",
        "AGE",
    ):
        assert column in table, table
    assert "production" in table  # the ModelVersion's Stage column
    categories = run("get", "modelgarden", "-n", "kubectl-demo", "-o", "name")
    assert len(categories.split()) == 6  # 2 FineTuneJobs, 2 ModelVersions, 2 InferenceDeployments
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_printer_columns_show_right_totals_and_rounded_figures(
    kube_env: KubeEnv, crds_installed: list[str]
) -> None:
    """`kubectl get ftj,mv` as people read it: TOTAL from maxSteps, loss and CO2e rounded with a
    unit (the status figures the operator writes with model_garden.api.display)."""
    namespace = ensure_namespace(kube_env, "columns")
    ftj = yaml.safe_load((REPO / "crds/samples/finetunejob-minimal.yaml").read_text())
    ftj["spec"]["hyperparameters"] = {"maxSteps": 30}
    create(kube_env, ftj, namespace)
    status = {
        "progress": {
            "step": 3,
            "totalSteps": planned_total_steps(30, 0),
            "loss": round_loss(5.969635973056826),
        },
        "carbon": TrainingCarbonStatus.of(
            CarbonReport(emissions_kg=1.853453560257589e-07)
        ).to_wire(),
    }
    mv = yaml.safe_load((REPO / "crds/samples/modelversion-minimal.yaml").read_text())
    create(kube_env, mv, namespace)
    for kind, name, st in [
        ("finetunejobs", ftj["metadata"]["name"], status),
        ("modelversions", mv["metadata"]["name"], {"lifetimeEmissions": format_emissions(0.0123)}),
    ]:
        obj = custom(kube_env).get_namespaced_custom_object(
            "modelgarden.dev", "v1alpha1", namespace, kind, name
        )
        obj["status"] = st
        custom(kube_env).replace_namespaced_custom_object_status(
            "modelgarden.dev", "v1alpha1", namespace, kind, name, obj
        )
    kubectl = str(kube_tools() / "kubectl")
    env = {**os.environ, "KUBECONFIG": str(kube_env.kubeconfig)}

    def table(kind: str) -> list[str]:
        proc = subprocess.run(
            [kubectl, "get", kind, "-n", namespace],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        print(proc.stdout)
        return proc.stdout.splitlines()

    ftj_row = cells(*table("ftj")[:2])
    assert (ftj_row["STEP"], ftj_row["TOTAL"], ftj_row["LOSS"]) == ("3", "30", "5.97"), ftj_row
    assert ftj_row["CO2E"] == "185 µg", ftj_row
    assert cells(*table("mv")[:2])["CO2E"] == "12.3 g"


def cells(header: str, row: str) -> dict[str, str]:
    """A kubectl table row by column name (columns start where their header does)."""
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    ends = [*starts[1:], None]
    return {n: row[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)}
