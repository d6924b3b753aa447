"""Small, pure readers of observed objects (Jobs, Pods, Deployments, ModelVersions) shared by
the planners.

Our own kinds are parsed into their models; only Kubernetes' built-in kinds are read as dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from model_garden.api import ModelVersion
from model_garden.api.contracts import TrainingResult

TRAINER_CONTAINER = "trainer"


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def condition(obj: Mapping[str, Any] | None, type: str) -> dict[str, Any] | None:
    """The ``status.conditions`` entry of ``type`` of a Kubernetes object, if any."""
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == type:
            return dict(cond)
    return None


def condition_true(obj: Mapping[str, Any] | None, type: str) -> bool:
    cond = condition(obj, type)
    return cond is not None and cond.get("status") == "True"


def version_ready(mv: ModelVersion) -> bool:
    """A ModelVersion whose artifact is verified (``Ready``): only such a version is served,
    used as an adapter or trained from."""
    return any(c.type == "Ready" and c.status == "True" for c in mv.status.conditions)


def owner_uid(obj: Mapping[str, Any], label: str, kind: str | None = None) -> str | None:
    """The uid of the resource that owns a child: its uid label, else its controller reference
    (of ``kind`` when given: a pod's controller is its Job or ReplicaSet, not our resource).

    Children are matched to owners by uid, never by name: a resource recreated under the same
    name must not adopt what its predecessor left behind.
    """
    meta = obj.get("metadata") or {}
    value = (meta.get("labels") or {}).get(label)
    if value:
        return str(value)
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and kind in (None, ref.get("kind")):
            return str(ref.get("uid"))
    return None


def job_finished(job: Mapping[str, Any] | None) -> str | None:
    """ "Complete", "Failed" or None for a batch/v1 Job."""
    if condition_true(job, "Complete"):
        return "Complete"
    if condition_true(job, "Failed"):
        return "Failed"
    return None


def job_active(job: Mapping[str, Any]) -> bool:
    """A Job that holds (or is about to hold) compute: not finished and not suspended."""
    return job_finished(job) is None and not (job.get("spec") or {}).get("suspend", False)


def newest_first(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        pods,
        key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "",
        reverse=True,
    )


def is_running(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def running_ip(pod: Mapping[str, Any]) -> str | None:
    """The address of a running pod (None before it runs or has one): only a running pod's
    /progress or meter can answer."""
    ip = (pod.get("status") or {}).get("podIP")
    return str(ip) if ip and is_running(pod) else None


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == name:
            return dict(status)
    return None


def terminated(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The container's terminated state (current, else the last one), if it terminated."""
    status = container_status(pod, name) or {}
    return ((status.get("state") or {}).get("terminated")) or (
        (status.get("lastState") or {}).get("terminated")
    )


def waiting(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    status = container_status(pod, name) or {}
    result = (status.get("state") or {}).get("waiting")
    return dict(result) if result else None


def parse_result(message: str | None) -> TrainingResult | None:
    """The TrainingResult of a termination message, or None when it is not one."""
    if not message:
        return None
    try:
        return TrainingResult.model_validate_json(message)
    except (ValidationError, ValueError):
        return None


def trim(obj: dict[str, Any]) -> dict[str, Any]:
    """What the indexes keep of a child: identity, spec, status (no managedFields)."""
    meta = dict(obj.get("metadata") or {})
    keep = (
        "name",
        "namespace",
        "uid",
        "labels",
        "annotations",
        "creationTimestamp",
        "generation",
        "resourceVersion",
        "finalizers",
        "ownerReferences",
    )
    out: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {k: meta[k] for k in keep if k in meta},
    }
    for key in ("spec", "status", "data"):
        if key in obj:
            out[key] = obj[key]
    if "deletionTimestamp" in meta:
        out["metadata"]["deletionTimestamp"] = meta["deletionTimestamp"]
    return out
