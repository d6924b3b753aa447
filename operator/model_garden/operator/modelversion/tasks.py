"""The Jobs ``mg export`` and ``mg eval`` run on a version in a cluster, where its files are.

Local mode runs ``python -m model_garden.export`` / ``model_garden.evaluation`` as a process on
this machine's copy of the artifact; in a cluster the artifact lives on a claim, so the CLI
starts the same program in a Job that mounts it, with the same restricted pod as the operator's
verification Job. The config document travels in an environment variable (one object to make
and to clean up, no ConfigMap), the result comes back as the program's last log line, and the
Job belongs to the version, so deleting the version deletes any Job left behind.
"""

from __future__ import annotations

import secrets
from typing import Any

from model_garden.api import ModelVersion
from model_garden.api.common import ApiModel, Resources
from model_garden.api.labels import LABEL_MODEL, LABEL_MV, LABEL_MV_UID

from ..plan import child_meta, child_name, owner_labels
from ..podspec import (
    CACHE_ENV,
    compute,
    container_security_context,
    pod_security_context,
    scratch_volumes,
)
from ..settings import OperatorSettings
from ..storage import Mounts

TASK_PROGRAMS = {"export": "model_garden.export", "eval": "model_garden.evaluation"}
TASK_CONFIG_ENV = "MODEL_GARDEN_TASK_CONFIG"
"""The environment variable holding the task's config document (JSON)."""
TASK_CONTAINER = "task"
TASK_DEADLINE_SECONDS = 6 * 3600
TASK_CPU = "1"
TASK_MEMORY = "4Gi"
"""A task's default request and limit: one core and room for a small model in fp32 (the
trainer's defaults, sized for training, would not fit beside a node's other pods)."""


def task_job_name(mv_name: str, task: str, suffix: str | None = None) -> str:
    """``<version>-<task>-<random>``: several exports of one version may run at once."""
    return child_name(mv_name, f"{task}-{suffix or secrets.token_hex(3)}")


def build_task_job(
    body: dict[str, Any],
    mv: ModelVersion,
    task: str,
    document: ApiModel,
    mounts: Mounts,
    settings: OperatorSettings,
    name: str | None = None,
    resources: Resources | None = None,
) -> dict[str, Any]:
    """A Job running ``python -m <program> --config-env MODEL_GARDEN_TASK_CONFIG`` once.

    ``mounts`` holds the claim paths the document names (the artifact read-only, the output
    writable); the writable folders are made by the pod's own user before it starts.
    """
    job_labels = owner_labels(
        task,
        (LABEL_MV, mv.metadata.name),
        (LABEL_MV_UID, mv.metadata.uid),
        {LABEL_MODEL: mv.spec.model},
    )
    wanted = resources or Resources()
    scratch, scratch_mounts = scratch_volumes(
        settings.tmp_size_limit,
        settings.cache_size_limit,
        shm_size_limit=wanted.memory or TASK_MEMORY,
    )
    image = settings.trainer_image
    config = document.model_dump_json(by_alias=True, exclude_none=True)
    container = {
        "name": TASK_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", TASK_PROGRAMS[task]],
        "args": ["--config-env", TASK_CONFIG_ENV],
        "env": [*CACHE_ENV, {"name": TASK_CONFIG_ENV, "value": config}],
        "resources": compute(wanted, TASK_CPU, TASK_MEMORY, settings.ephemeral_storage_request),
        "securityContext": container_security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts.volume_mounts() + scratch_mounts,
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": mounts.volumes() + scratch,
    }
    prepare = mounts.prepare_container(image, container_security_context())
    if prepare is not None:
        pod_spec["initContainers"] = [prepare]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_meta(body, name or task_job_name(mv.metadata.name, task), job_labels),
        "spec": {
            "backoffLimit": 0,  # a failed export is reported, not retried behind the user's back
            "activeDeadlineSeconds": TASK_DEADLINE_SECONDS,
            "template": {"metadata": {"labels": job_labels}, "spec": pod_spec},
        },
    }
