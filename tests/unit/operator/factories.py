"""Small builders of resources and observed children for planner tables (no cluster)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from model_garden.api import ModelVersion
from model_garden.api.contracts import TrainingResult
from model_garden.operator.settings import OperatorSettings

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "cd" * 32
API = "modelgarden.dev/v1alpha1"
SETTINGS = OperatorSettings(max_running_per_namespace=2, stuck_timeout_seconds=300)


def ts(delta_s: float = 0) -> str:
    return (NOW + timedelta(seconds=delta_s)).isoformat().replace("+00:00", "Z")


def ftj(
    name: str = "tune",
    *,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": API,
        "kind": "FineTuneJob",
        "metadata": {
            "name": name,
            "namespace": "team",
            "uid": f"uid-{name}",
            "generation": generation,
            "creationTimestamp": ts(-600),
            "labels": {"modelgarden.dev/experiment": "exp1"},
        },
        "spec": {
            "baseModel": {"hub": {"id": "org/base", "tokenSecret": {"name": "hf"}}},
            "dataset": {"uri": "pvc://data/chat.jsonl"},
            "output": {"model": "chat", "storage": "pvc://artifacts"},
            "resources": {
                "gpus": 2,
                "memory": "32Gi",
                "nodeSelector": {"pool": "gpu"},
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                ],
            },
        },
    }
    body["spec"].update(spec)
    if status is not None:
        body["status"] = status
    return body


def job(
    name: str = "tune-train",
    *,
    version: str = "chat-v1",
    finished: str | None = None,
    reason: str = "",
    suspend: bool = False,
    completion: str | None = None,
    owner_uid: str = "uid-tune",
    age_s: float | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if finished:
        status["conditions"] = [{"type": finished, "status": "True", "reason": reason}]
    if completion:
        status["completionTime"] = completion
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "team",
            **({"creationTimestamp": ts(-age_s)} if age_s is not None else {}),
            "labels": {
                "modelgarden.dev/model-version": version,
                "modelgarden.dev/model": "chat",
                "modelgarden.dev/fine-tune-job-uid": owner_uid,
            },
        },
        "spec": {"suspend": suspend},
        "status": status,
    }


def pod(
    phase: str = "Pending",
    *,
    exit_code: int | None = None,
    reason: str | None = None,
    message: str = "",
    waiting: str | None = None,
    unschedulable: bool = False,
    age_s: float = 10,
    ip: str = "10.0.0.5",
    waiting_message: str | None = None,
    scheduled: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "podIP": ip}
    container: dict[str, Any] = {"name": "trainer", "state": {}}
    if exit_code is not None:
        container["state"] = {
            "terminated": {"exitCode": exit_code, "reason": reason or "", "message": message}
        }
    elif waiting:
        message = waiting_message if waiting_message is not None else f"{waiting}: boom"
        container["state"] = {"waiting": {"reason": waiting, "message": message}}
    elif phase == "Running":
        container["state"] = {"running": {}}
    status["containerStatuses"] = [container]
    if unschedulable:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }
        ]
    if scheduled:
        status["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    return {
        "metadata": {"name": "tune-train-abcde", "creationTimestamp": ts(-age_s), "uid": "pod-1"},
        "spec": {
            "volumes": [
                {"name": "config", "configMap": {"name": "tune-train-config"}},
                {"name": "claim-data", "persistentVolumeClaim": {"claimName": "data"}},
            ]
        },
        "status": status,
    }


def result(**update: Any) -> TrainingResult:
    base = {
        "outcome": "Succeeded",
        "backend": "unsloth",
        "metrics": {"trainLoss": 0.9, "evalLoss": 1.1, "steps": 100, "epochs": 1.0},
        "carbon": {"energyKwh": 0.5, "emissionsKg": 0.05, "country": "FRA", "method": "measured"},
        "artifacts": [
            {
                "kind": "adapter",
                "path": "/mnt/model-garden/artifacts/team/chat/v1/adapter",
                "uri": "pvc://artifacts/team/chat/v1/adapter",
                "sizeBytes": 1000,
                "digest": DIGEST,
            },
            {
                "kind": "merged",
                "path": "/mnt/model-garden/artifacts/team/chat/v1/merged",
                "uri": "pvc://artifacts/team/chat/v1/merged",
                "sizeBytes": 9000,
                "digest": DIGEST,
            },
        ],
    }
    base.update(update)
    return TrainingResult.model_validate(base)


def mv(
    name: str = "chat-v1",
    model: str = "chat",
    version: int = 1,
    *,
    stage: str = "none",
    ready: bool = True,
    uid_label: str | None = None,
    fmt: str = "merged",
    digest: bool = True,
    deleting: bool = False,
    finalizers: list[str] | None = None,
    status: dict[str, Any] | None = None,
    **artifact: Any,
) -> dict[str, Any]:
    art: dict[str, Any] = {"uri": f"pvc://artifacts/team/{model}/v{version}/{fmt}", "format": fmt}
    if fmt == "adapter":
        art["baseModel"] = "org/base"
    if digest:
        art.update(digest=DIGEST, sizeBytes=123)
    art.update(artifact)
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "team",
        "uid": f"uid-{name}",
        "generation": 1,
        "resourceVersion": "7",
        "labels": {"modelgarden.dev/fine-tune-job-uid": uid_label} if uid_label else {},
        "finalizers": finalizers
        if finalizers is not None
        else ["modelgarden.dev/in-use-protection"],
    }
    if deleting:
        meta["deletionTimestamp"] = ts()
    st = copy.deepcopy(status) if status else {}
    if ready:
        st.setdefault("conditions", [{"type": "Ready", "status": "True", "reason": "Verified"}])
    return {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": meta,
        "spec": {"model": model, "version": version, "artifact": art, "stage": stage},
        "status": st,
    }


def mvt(*args: Any, **kw: Any) -> ModelVersion:
    """``mv(...)`` parsed, as planners see their siblings."""
    return ModelVersion.model_validate(mv(*args, **kw))


def idep(name: str = "bot", *, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": "team", "uid": f"uid-{name}", "generation": 1},
        "spec": spec,
        "status": status or {},
    }


def conditions(status: dict[str, Any] | None) -> dict[str, tuple[str, str]]:
    """{type: (status, reason)} of a planned status patch."""
    return {c["type"]: (c["status"], c["reason"]) for c in (status or {}).get("conditions", [])}
