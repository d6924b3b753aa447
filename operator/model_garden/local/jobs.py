"""The Job controller and garbage collector of local mode, over the store's Jobs and Pods.

What kube-controller-manager does for the operator in a cluster, for the same objects: a Job
without an active pod gets one (run by :mod:`.pods`); a succeeded pod completes the Job; a
failed one is retried up to ``backoffLimit`` unless the ``podFailurePolicy`` fails the Job at
once on its exit code; ``activeDeadlineSeconds`` stops it; a suspended Job's pods are stopped
(SIGTERM, the grace period, then SIGKILL); an object whose controller is gone is deleted.
"""

from __future__ import annotations

import secrets
import shutil
from datetime import datetime
from typing import Any

from model_garden.api.common import utcnow
from model_garden.operator import observe
from model_garden.operator.status import timestamp

from . import deployments, pods
from .store import PLURALS, LocalStore

GC_KINDS = ("Pod", "Job", "Deployment", "Service", "NetworkPolicy", "ConfigMap")
"""Kinds that have a controller ownerReference and are deleted with their owner."""


def _condition(type: str, reason: str, message: str) -> dict[str, Any]:
    now = timestamp(utcnow())
    return {
        "type": type,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


def _controller(obj: dict[str, Any]) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def _fail_job_on(job: dict[str, Any], pod: dict[str, Any]) -> bool:
    """Whether the Job's podFailurePolicy fails it at once for this failed pod."""
    rules = ((job["spec"].get("podFailurePolicy") or {}).get("rules")) or []
    for rule in rules:
        codes = rule.get("onExitCodes")
        if rule.get("action") != "FailJob" or not codes:
            continue
        term = observe.terminated(pod, codes.get("containerName") or "") or {}
        code = term.get("exitCode")
        inside = code in (codes.get("values") or [])
        if code is not None and inside == (codes.get("operator", "In") == "In"):
            return True
    return False


def _new_pod(job: dict[str, Any]) -> dict[str, Any]:
    meta = job["metadata"]
    template = job["spec"]["template"]
    labels = {
        **(template.get("metadata") or {}).get("labels", {}),
        "job-name": meta["name"],
        "controller-uid": meta["uid"],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{secrets.token_hex(3)[:5]}",
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
    }


def _over_deadline(job: dict[str, Any], now: datetime) -> bool:
    deadline = job["spec"].get("activeDeadlineSeconds")
    started = observe.parse_time((job.get("status") or {}).get("startTime"))
    return bool(deadline) and started is not None and (now - started).total_seconds() > deadline


def _stop_pods(store: LocalStore, active: list[dict[str, Any]]) -> None:
    """SIGTERM; the shim kills after the grace period. The pod is deleted once it ended."""
    for pod in active:
        pods.terminate(store, pod["metadata"]["name"])
        store.patch(
            "Pod", pod["metadata"]["name"], {"metadata": {"deletionTimestamp": timestamp(utcnow())}}
        )


def sync_job(store: LocalStore, job: dict[str, Any], mine: list[dict[str, Any]]) -> None:
    """Drive one Job from its pods (called under the store's lock)."""
    name = job["metadata"]["name"]
    spec, status = job["spec"], dict(job.get("status") or {})
    active = [
        p for p in mine if (p.get("status") or {}).get("phase") in (None, "Pending", "Running")
    ]
    failed = [p for p in mine if (p.get("status") or {}).get("phase") == "Failed"]
    succeeded = [p for p in mine if (p.get("status") or {}).get("phase") == "Succeeded"]
    now = utcnow()
    if observe.job_finished(job) is not None:
        _stop_pods(store, [p for p in active if not p["metadata"].get("deletionTimestamp")])
        return
    conditions = list(status.get("conditions") or [])
    if spec.get("suspend"):
        _stop_pods(store, [p for p in active if not p["metadata"].get("deletionTimestamp")])
        active = []
    elif succeeded:
        conditions.append(_condition("Complete", "Completed", "The pod succeeded."))
        status["completionTime"] = timestamp(now)
    elif any(_fail_job_on(job, p) for p in failed):
        conditions.append(
            _condition("Failed", "PodFailurePolicy", "The pod's exit code fails the Job at once.")
        )
    elif len(failed) > int(spec.get("backoffLimit", 6)):
        conditions.append(
            _condition(
                "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
            )
        )
    elif _over_deadline(job, now):
        _stop_pods(store, active)
        active = []
        conditions.append(
            _condition(
                "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"
            )
        )
    elif not active:
        pod = store.create(_new_pod(job))
        store.patch("Pod", pod["metadata"]["name"], {"status": pods.start(store, pod)["status"]})
        active = [pod]
        status.setdefault("startTime", timestamp(now))
    status.update(
        {
            "active": len(active) or None,
            "failed": len(failed) or None,
            "succeeded": len(succeeded) or None,
            "conditions": conditions or None,
        }
    )
    current = job.get("status") or {}
    patch = {k: v for k, v in status.items() if current.get(k) != v}
    if patch:
        store.patch("Job", name, {"status": patch})


def sync(store: LocalStore) -> None:
    """One pass of kubelet, Job and Deployment controllers, garbage collector (under the lock)."""
    with store.lock():
        for pod in store.list_raw("Pod"):
            changed = pods.observe(store, pod)
            if changed is not None:
                store.patch("Pod", pod["metadata"]["name"], {"status": changed})
                if changed.get("phase") in ("Succeeded", "Failed"):  # no process reads it now
                    shutil.rmtree(store.scratch_dir(pod["metadata"]["name"]), ignore_errors=True)
            elif pod["metadata"].get("deletionTimestamp") and not pods.running(
                store, pod["metadata"]["name"]
            ):
                store.delete("Pod", pod["metadata"]["name"])
        all_pods = store.list_raw("Pod")
        for job in store.list_raw("Job"):
            mine = [p for p in all_pods if _controller(p) == job["metadata"]["uid"]]
            sync_job(store, job, mine)
        for dep in store.list_raw("Deployment"):
            mine = [p for p in all_pods if _controller(p) == dep["metadata"]["uid"]]
            deployments.sync_deployment(store, dep, mine)
        collect_garbage(store)


def orphans(store: LocalStore) -> list[dict[str, Any]]:
    """Objects whose controller no longer exists: what the garbage collector has to remove."""
    uids = {obj["metadata"].get("uid") for kind in PLURALS for obj in store.list_raw(kind)}
    out = []
    for kind in GC_KINDS:
        for obj in store.list_raw(kind):
            owner = _controller(obj)
            if owner is not None and owner not in uids:
                out.append(obj)
    return out


def collect_garbage(store: LocalStore) -> None:
    """Delete objects whose controller no longer exists (a running pod is stopped first)."""
    for obj in orphans(store):
        name = obj["metadata"]["name"]
        if obj["kind"] == "Pod" and pods.running(store, name):
            if not obj["metadata"].get("deletionTimestamp"):
                _stop_pods(store, [obj])
            continue
        store.delete(obj["kind"], name)
