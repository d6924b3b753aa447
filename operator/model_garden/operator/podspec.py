"""Pieces every pod we create shares: the restricted Pod Security profile, compute, scheduling."""

from __future__ import annotations

from typing import Any

from model_garden.api.common import Resources

RUN_AS_USER = 1000
GPU_RESOURCE = "nvidia.com/gpu"


def pod_security_context() -> dict[str, Any]:
    """Pod-level settings of the ``restricted`` Pod Security Standard: non-root, RuntimeDefault."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level settings of the ``restricted`` profile, plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def compute(resources: Resources, default_cpu: str, default_memory: str) -> dict[str, Any]:
    """requests == limits (Guaranteed QoS for CPU and memory), GPUs as ``nvidia.com/gpu``."""
    amounts: dict[str, Any] = {
        "cpu": resources.cpu or default_cpu,
        "memory": resources.memory or default_memory,
    }
    if resources.gpus:
        amounts[GPU_RESOURCE] = str(resources.gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def scheduling(resources: Resources) -> dict[str, Any]:
    """nodeSelector and tolerations from the spec (only the keys that are set)."""
    out: dict[str, Any] = {}
    if resources.node_selector:
        out["nodeSelector"] = dict(resources.node_selector)
    if resources.tolerations:
        out["tolerations"] = [t.to_wire() for t in resources.tolerations]
    return out


def scratch_volumes() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Writable scratch for a read-only root filesystem: /tmp, a cache dir, and /dev/shm."""
    volumes = [
        {"name": "tmp", "emptyDir": {}},
        {"name": "cache", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory"}},
    ]
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "cache", "mountPath": "/var/cache/model-garden"},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    return volumes, mounts


CACHE_ENV = [
    {"name": "HOME", "value": "/tmp"},
    {"name": "HF_HOME", "value": "/var/cache/model-garden/huggingface"},
    {"name": "XDG_CACHE_HOME", "value": "/var/cache/model-garden"},
    {"name": "PYTHONUNBUFFERED", "value": "1"},
]
