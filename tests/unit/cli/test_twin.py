"""Local mode is the operator's twin: from the same job and the same trainer result, the
ModelVersion made locally equals the one the operator's planner makes, apart from storage URIs."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from model_garden.api.labels import LABEL_FTJ_UID
from model_garden.local.store import LocalStore
from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob
from model_garden.operator.settings import OperatorSettings

from .conftest import Env

VOLATILE = ("uid", "creationTimestamp", "generation", "resourceVersion", "namespace", "finalizers")
"""What the API server (or the store) and the ModelVersion's own reconciler add after creation;
the operator's version gets the same in-use finalizer once its planner runs."""


def _operator_model_version(
    job: dict[str, Any], pod: dict[str, Any], storage: str
) -> dict[str, Any]:
    """What the operator's FineTuneJob planner creates when it observes the same job complete,
    its trainer having written the same result onto a claim of the cluster."""
    ftj = copy.deepcopy(job)
    ftj.pop("status", None)
    ftj["spec"]["output"]["storage"] = storage
    local_storage = job["spec"]["output"]["storage"]
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    moved_pod = copy.deepcopy(pod)
    moved_pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] = message.replace(
        local_storage, storage
    )
    k8s_job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{ftj['metadata']['name']}-train",
            "namespace": "team",
            "labels": {
                LABEL_FTJ_UID: ftj["metadata"]["uid"],
                "modelgarden.dev/model-version": "m-v1",
            },
        },
        "spec": {},
        "status": {
            "conditions": [{"type": "Complete", "status": "True"}],
            "completionTime": "2026-01-01T00:00:00Z",
        },
    }
    world = FineTuneJobWorld(job=k8s_job, pods=[moved_pod])
    plan = plan_finetunejob(ftj, world, OperatorSettings(), datetime.now(UTC))
    (mv,) = [o for o in plan.create if o["kind"] == "ModelVersion"]
    return mv


def _comparable(mv: dict[str, Any], storage: str) -> dict[str, Any]:
    out = copy.deepcopy(mv)
    out.pop("status", None)
    for key in VOLATILE:
        out["metadata"].pop(key, None)
    artifact = out["spec"]["artifact"]
    assert artifact["uri"].startswith(storage), artifact["uri"]
    artifact["uri"] = "<storage>" + artifact["uri"][len(storage) :]
    return out


def test_local_and_operator_model_versions_are_equal_apart_from_storage(trained: Env) -> None:
    store = LocalStore(trained.home)
    job = store.get("FineTuneJob", "j1")
    (pod,) = [p for p in store.list_raw("Pod") if p["metadata"]["labels"].get(LABEL_FTJ_UID)]
    local = store.get("ModelVersion", "m-v1")
    assert job is not None and local is not None
    theirs = _operator_model_version(job, pod, "pvc://team-artifacts")
    assert _comparable(local, "pvc://model-garden-artifacts") == _comparable(
        theirs, "pvc://team-artifacts"
    )
    # and the comparison sees what matters: lineage, metrics, carbon, digest
    spec = local["spec"]
    assert spec["source"]["fineTuneJob"] == "j1" and spec["source"]["fineTuneJobUid"]
    assert spec["metrics"]["evalLoss"] == "1.52" and spec["metrics"]["initialEvalLoss"] == "6.13"
    assert spec["trainingCarbon"]["emissionsKg"] == "2e-07"
    assert spec["artifact"]["digest"].startswith("sha256:")
