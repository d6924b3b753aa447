"""ModelVersion children: the verification Job that sizes and hashes an artifact on a claim."""

from __future__ import annotations

from typing import Any

from model_garden.api import ModelVersion
from model_garden.api.common import Resources
from model_garden.api.labels import (
    LABEL_MODEL,
    LABEL_MV,
    LABEL_MV_UID,
)

from ..plan import child_meta, child_name, owner_labels
from ..podspec import compute, container_security_context, pod_security_context, scratch_volumes
from ..settings import OperatorSettings
from ..storage import Mounts, resolve

VERIFY_CONTAINER = "verify"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"


def verify_job_name(mv_name: str) -> str:
    return child_name(mv_name, "verify")


def labels(mv: ModelVersion) -> dict[str, str]:
    """The Job's and pod's labels; the version's uid ties them to this very ModelVersion."""
    return owner_labels(
        "verify",
        (LABEL_MV, mv.metadata.name),
        (LABEL_MV_UID, mv.metadata.uid),
        {LABEL_MODEL: mv.spec.model},
    )


def build_verify_job(
    body: dict[str, Any], mv: ModelVersion, settings: OperatorSettings
) -> dict[str, Any]:
    """A short Job that sizes and hashes the artifact (``model_garden.operator.verify``)."""
    mounts = Mounts()
    path = mounts.add(resolve(mv.spec.artifact.uri))
    job_labels = labels(mv)
    scratch, scratch_mounts = scratch_volumes(
        settings.tmp_size_limit, settings.cache_size_limit, shm_size_limit=settings.verify_memory
    )
    container = {
        "name": VERIFY_CONTAINER,
        "image": settings.verify_image or settings.trainer_image,
        "command": ["python", "-m", "model_garden.operator.verify"],
        # The report's path said explicitly, so a runner that maps paths (local mode) sees it.
        "args": [
            "--path",
            path,
            "--format",
            str(mv.spec.artifact.format),
            "--termination-log",
            TERMINATION_MESSAGE_PATH,
        ],
        "resources": compute(
            Resources(),
            settings.verify_cpu,
            settings.verify_memory,
            settings.ephemeral_storage_request,
        ),
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts.volume_mounts() + scratch_mounts,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_meta(body, verify_job_name(mv.metadata.name), job_labels),
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": 3600,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": mounts.volumes() + scratch,
                },
            },
        },
    }
