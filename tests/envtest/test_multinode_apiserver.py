"""The multi-node engines on a real kube-apiserver (1.20): discovery sees Kubeflow Trainer's
TrainJob and JobSet only once their vendored CRDs are installed (CEL stripped: 1.20 has no CEL),
and the TrainJob and JobSet the operator renders are accepted and stored unpruned: every field
sent survives the server's structural schema (where a misspelt field would be dropped).
No Trainer or JobSet controller runs here: what they do with the objects is theirs."""

from __future__ import annotations

from typing import Any

import pytest

from crd_schemas.multinode import FILES, for_envtest
from harness import envtest
from model_garden.api import FineTuneJob
from model_garden.operator.finetunejob.multinode import Engines, discover, render
from model_garden.operator.finetunejob.objects import build_job, build_training_config
from model_garden.operator.settings import OperatorSettings
from model_garden.operator.storage import Mounts

from .test_operator import Cluster, wait_for

pytestmark = pytest.mark.envtest

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def established(cluster: Cluster, name: str) -> bool:
    crd = cluster.x.call("GET", f"{CRD_PATH}/{name}")
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def unstored(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths of what was sent and is not stored as sent (server defaults may add fields)."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [path]
        return [p for k, v in sent.items() for p in unstored(v, stored.get(k), f"{path}.{k}")]
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(sent) != len(stored):
            return [path]
        return [
            p
            for i, (a, b) in enumerate(zip(sent, stored, strict=True))
            for p in unstored(a, b, f"{path}[{i}]")
        ]
    return [] if sent == stored else [path]


def rendered(kind: str, ns: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelgarden.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "tune", "namespace": ns, "uid": "uid-tune", "generation": 1},
        "spec": {
            "baseModel": {"hub": {"id": "org/base", "tokenSecret": {"name": "hf"}}},
            "dataset": {"uri": "pvc://data/chat.jsonl"},
            "output": {"model": "chat", "storage": "pvc://artifacts"},
            "resources": {"gpus": 4, "memory": "64Gi"},
            "nodes": 2,
        },
    }
    ftj = FineTuneJob.model_validate(body)
    settings, mounts = OperatorSettings(), Mounts()
    build_training_config(ftj, 1, settings, mounts)
    obj = render(build_job(body, ftj, 1, settings, mounts), ftj, kind)
    # no FineTuneJob exists here: without the owner, the garbage collector would delete it
    obj["metadata"].pop("ownerReferences", None)
    return obj


def test_discovery_and_the_rendered_objects_on_a_real_apiserver(
    kube_env: envtest.KubeEnv,
) -> None:
    cluster = Cluster(kube_env.api_client)
    assert discover(cluster.x.call) == Engines()
    names: list[str] = []
    try:
        for group, kind in FILES:
            crd = for_envtest(group, kind)
            cluster.x.call("POST", CRD_PATH, crd)
            names.append(crd["metadata"]["name"])
        for name in names:
            wait_for(f"{name} Established", lambda name=name: established(cluster, name))
        found = wait_for(
            "both engines discovered",
            lambda: discover(cluster.x.call).jobset and discover(cluster.x.call),
        )
        assert found == Engines(trainjob=True, jobset=True)

        ns = cluster.namespace()
        for kind, api_version, plural in (
            ("TrainJob", "trainer.kubeflow.org/v1alpha1", "trainjobs"),
            ("JobSet", "jobset.x-k8s.io/v1alpha2", "jobsets"),
        ):
            obj = rendered(kind, ns)
            path = f"/apis/{api_version}/namespaces/{ns}/{plural}"
            cluster.x.call("POST", path, obj)
            stored = cluster.x.call("GET", f"{path}/{obj['metadata']['name']}")
            assert unstored(obj["spec"], stored["spec"]) == [], kind
            assert stored["metadata"]["labels"] == obj["metadata"]["labels"]
        # the check has teeth: a field the schema does not declare is pruned, and reported
        bad = rendered("TrainJob", ns)
        bad["metadata"]["name"] = "misspelt"
        bad["spec"]["trainer"]["numProcsPerNode"] = 4
        path = f"/apis/trainer.kubeflow.org/v1alpha1/namespaces/{ns}/trainjobs"
        cluster.x.call("POST", path, bad)
        stored = cluster.x.call("GET", f"{path}/misspelt")
        assert unstored(bad["spec"], stored["spec"]) == [".trainer.numProcsPerNode"]
    finally:
        for name in names:
            cluster.x.call("DELETE", f"{CRD_PATH}/{name}")
