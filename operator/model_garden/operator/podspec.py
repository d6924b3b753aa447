"""Pieces every pod we create shares: the restricted Pod Security profile, compute, scheduling."""

from __future__ import annotations

from typing import Any

from model_garden.api.common import Resources, SecretKeyRef, Toleration
from model_garden.api.contracts import API_KEY_ENV

RUN_AS_USER = 1000
GPU_RESOURCE = "nvidia.com/gpu"
EPHEMERAL_STORAGE = "ephemeral-storage"
DEFAULT_TMP_SIZE_LIMIT = "4Gi"
DEFAULT_CACHE_SIZE_LIMIT = "100Gi"
API_KEY_VOLUME = "api-key"
API_KEY_DIR = "/etc/model-garden-api-key"
API_KEY_FILE = f"{API_KEY_DIR}/api-key"
"""Where the serving pod finds its API key as a file (``ServingConfig.api_key_file``)."""
API_KEY_FILE_MODE = 0o440
"""Owner and group read: the files belong to root and the pod's fsGroup, which uid 1000 is in."""


def pod_security_context() -> dict[str, Any]:
    """Pod-level settings of the ``restricted`` Pod Security Standard: non-root, RuntimeDefault."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        # Without it the kubelet re-chowns every file of every claim at each start (slow on a
        # claim full of checkpoints); OnRootMismatch only when the volume root is not ours yet.
        "fsGroupChangePolicy": "OnRootMismatch",
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


def compute(
    resources: Resources,
    default_cpu: str,
    default_memory: str,
    ephemeral_storage: str | None = None,
) -> dict[str, Any]:
    """requests == limits (Guaranteed QoS for CPU and memory), GPUs as ``nvidia.com/gpu``.

    ``ephemeral_storage`` (settings.ephemeral_storage_request) is requested, not limited: the
    scheduler then places the pod where its scratch fits, and each emptyDir's ``sizeLimit``
    bounds what it may use (a limit here would have to exceed the cache's sizeLimit anyway).
    """
    amounts: dict[str, Any] = {
        "cpu": resources.cpu or default_cpu,
        "memory": resources.memory or default_memory,
    }
    if resources.gpus:
        amounts[GPU_RESOURCE] = str(resources.gpus)
    requests = dict(amounts)
    if ephemeral_storage:
        requests[EPHEMERAL_STORAGE] = ephemeral_storage
    return {"requests": requests, "limits": dict(amounts)}


def scheduling(
    resources: Resources,
    gpu_node_selector: dict[str, str] | None = None,
    gpu_tolerations: list[Toleration] | None = None,
) -> dict[str, Any]:
    """nodeSelector and tolerations: the spec's, else the admin's GPU defaults for a GPU pod.

    Without defaults a GPU pod of a spec that names no nodes waits Pending on a cluster whose
    GPU nodes are tainted (the usual ``nvidia.com/gpu:NoSchedule``), and users would have to
    know the cluster's labels and taints. ``gpu_node_selector`` / ``gpu_tolerations``
    (settings.gpu_node_selector / gpu_tolerations, the chart's ``gpu.*``) apply only when the
    pod asks for GPUs, each only where the spec sets none of its own: a spec that names its
    nodes or tolerations replaces the default of that field, never merges with it.
    """
    node_selector = dict(resources.node_selector)
    tolerations = [t.to_wire() for t in resources.tolerations]
    if resources.gpus:
        if not node_selector and gpu_node_selector:
            node_selector = dict(gpu_node_selector)
        if not tolerations and gpu_tolerations:
            tolerations = [t.to_wire() for t in gpu_tolerations]
    out: dict[str, Any] = {}
    if node_selector:
        out["nodeSelector"] = node_selector
    if tolerations:
        out["tolerations"] = tolerations
    return out


def scratch_volumes(
    tmp_size_limit: str = DEFAULT_TMP_SIZE_LIMIT,
    cache_size_limit: str = DEFAULT_CACHE_SIZE_LIMIT,
    shm_size_limit: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Writable scratch for a read-only root filesystem: /tmp, a cache dir, and /dev/shm.

    Every emptyDir has a ``sizeLimit`` (the kubelet evicts a pod that fills one, instead of the
    node's disk filling up): settings.tmp_size_limit / cache_size_limit (Hub downloads land in
    the cache). /dev/shm is memory: pass the container's memory limit as ``shm_size_limit``
    (without it the kubelet sizes the tmpfs to the pod's memory limit or the node's memory).
    """
    shm: dict[str, Any] = {"medium": "Memory"}
    if shm_size_limit:
        shm["sizeLimit"] = shm_size_limit
    volumes = [
        {"name": "tmp", "emptyDir": {"sizeLimit": tmp_size_limit}},
        {"name": "cache", "emptyDir": {"sizeLimit": cache_size_limit}},
        {"name": "dshm", "emptyDir": shm},
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


def api_key_env(secret: SecretKeyRef, env_name: str = API_KEY_ENV) -> dict[str, Any]:
    """The API key as an env var through ``secretKeyRef`` (the operator never reads Secrets).

    ``env_name`` is ``ServingConfig.api_key_env``; the launcher hands the key to vLLM as
    ``VLLM_API_KEY`` in vLLM's environment, never on its command line.
    """
    return {
        "name": env_name,
        "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
    }


def api_key_volume(secret: SecretKeyRef) -> tuple[dict[str, Any], dict[str, Any]]:
    """The API key Secret as a read-only file at ``API_KEY_FILE`` (volume, volumeMount).

    A directory mount, not ``subPath``: the kubelet updates it when the Secret changes, and the
    launcher restarts vLLM with the new key when the file's content changes. Mode 0440 with the
    pod's fsGroup: readable by the server (uid 1000, group 1000), by nobody else.
    """
    volume = {
        "name": API_KEY_VOLUME,
        "secret": {
            "secretName": secret.name,
            "items": [{"key": secret.key, "path": API_KEY_FILE.rsplit("/", 1)[1]}],
            "defaultMode": API_KEY_FILE_MODE,
        },
    }
    mount = {"name": API_KEY_VOLUME, "mountPath": API_KEY_DIR, "readOnly": True}
    return volume, mount
