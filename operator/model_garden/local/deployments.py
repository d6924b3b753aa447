"""The Deployment controller of local mode: a Deployment's pods as local processes.

What kube-controller-manager (through ReplicaSets) and the kubelet's probes do for the
operator's serving Deployments, for the same objects: pods of the current template are started
until the wanted count runs, pods of an older template are stopped first (pods share this
machine's ports, so every rollout is a Recreate), a pod whose process ended is replaced after a
back-off, and readiness is the container's ``readinessProbe`` (an HTTP GET on its named port).
One replica at most runs per Deployment: a second would need the same ports.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from model_garden.api.common import utcnow
from model_garden.operator import observe
from model_garden.operator.plan import stable_hash
from model_garden.operator.status import timestamp

from . import pods
from .store import LocalStore

RESTART_BACKOFF_SECONDS = 10.0
PROBE_TIMEOUT_SECONDS = 1.0
LOCAL_REPLICAS = 1
TEMPLATE_HASH = "pod-template-hash"


def container_port(container: dict[str, Any], name: str | int) -> int | None:
    """A container port by name (or the number itself)."""
    if isinstance(name, int):
        return name
    for port in container.get("ports") or []:
        if port.get("name") == name:
            return int(port["containerPort"])
    return None


def _probe_ready(pod: dict[str, Any]) -> bool:
    import httpx

    container = pod["spec"]["containers"][0]
    probe = (container.get("readinessProbe") or {}).get("httpGet")
    if not probe:
        return True
    port = container_port(container, probe.get("port", 80))
    try:
        reply = httpx.get(
            f"http://127.0.0.1:{port}{probe.get('path', '/')}", timeout=PROBE_TIMEOUT_SECONDS
        )
    except httpx.HTTPError:
        return False
    return 200 <= reply.status_code < 400


def _set_ready(store: LocalStore, pod: dict[str, Any], ready: bool) -> None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not statuses or bool(statuses[0].get("ready")) == ready:
        return
    status = dict(pod["status"])
    status["containerStatuses"] = [{**statuses[0], "ready": ready}, *statuses[1:]]
    status["conditions"] = [
        {"type": "PodScheduled", "status": "True"},
        {"type": "Ready", "status": "True" if ready else "False"},
    ]
    store.patch("Pod", pod["metadata"]["name"], {"status": status})
    pod["status"] = status


def _new_pod(dep: dict[str, Any], template_hash: str) -> dict[str, Any]:
    meta = dep["metadata"]
    template = dep["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{meta['name']}-{template_hash[:8]}-{secrets.token_hex(3)[:5]}",
            "labels": {
                **(template.get("metadata") or {}).get("labels", {}),
                TEMPLATE_HASH: template_hash,
            },
            "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": template["spec"],
    }


def _ended_long_ago(pod: dict[str, Any]) -> bool:
    term = observe.terminated(pod, pod["spec"]["containers"][0]["name"]) or {}
    at = observe.parse_time(term.get("finishedAt"))
    return at is None or (utcnow() - at).total_seconds() >= RESTART_BACKOFF_SECONDS


def sync_deployment(store: LocalStore, dep: dict[str, Any], mine: list[dict[str, Any]]) -> None:
    """Drive one Deployment's pods and status (called under the store's lock)."""
    template_hash = stable_hash(dep["spec"]["template"])[:10]
    want = min(int(dep["spec"].get("replicas", 1)), LOCAL_REPLICAS)
    live = [p for p in mine if not p["metadata"].get("deletionTimestamp")]
    ended = [p for p in live if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
    alive = [p for p in live if p not in ended]
    current = [p for p in alive if p["metadata"]["labels"].get(TEMPLATE_HASH) == template_hash]
    old = [p for p in alive if p not in current]
    for pod in ended:
        if _ended_long_ago(pod):  # restartPolicy Always, with a back-off
            store.delete("Pod", pod["metadata"]["name"])
    stopping = old + current[want:]
    for pod in stopping:
        pods.terminate(store, pod["metadata"]["name"])
        store.patch(
            "Pod", pod["metadata"]["name"], {"metadata": {"deletionTimestamp": timestamp(utcnow())}}
        )
    current = current[:want]
    busy = any(pods.running(store, p["metadata"]["name"]) for p in mine if p not in current)
    waiting = [p for p in ended if not _ended_long_ago(p)]
    if len(current) < want and not busy and not waiting:
        pod = store.create(_new_pod(dep, template_hash))
        store.patch("Pod", pod["metadata"]["name"], {"status": pods.start(store, pod)["status"]})
        current.append(pod)
    ready = 0
    for pod in current:
        if (pod.get("status") or {}).get("phase") == "Running":
            ok = _probe_ready(pod)
            _set_ready(store, pod, ok)
            ready += ok
    conditions = []
    if int(dep["spec"].get("replicas", 1)) > LOCAL_REPLICAS:
        conditions.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "reason": "LocalMode",
                "message": f"local mode runs {LOCAL_REPLICAS} replica per Deployment (its pods would share ports)",
            }
        )
    status = {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": len(current),
        "updatedReplicas": len(current),
        "readyReplicas": ready or None,
        "availableReplicas": ready or None,
        "conditions": conditions or None,
    }
    before = dep.get("status") or {}
    patch = {k: v for k, v in status.items() if before.get(k) != v}
    if patch:
        store.patch("Deployment", dep["metadata"]["name"], {"status": patch})


def wait_stopped(store: LocalStore, names: list[str], timeout: float) -> None:
    """Wait until the pods' processes ended (their shims kill after the grace period)."""
    deadline = time.monotonic() + timeout
    while any(pods.running(store, n) for n in names) and time.monotonic() < deadline:
        time.sleep(0.2)
