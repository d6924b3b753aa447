"""ModelVersion children: the verification Job that sizes and hashes an artifact (on a claim, on
S3 or on the Hub), and the cleanup Job that deletes it when ``spec.retention`` is Delete.

Both are the version's one Job slot (component ``verify``, which the operator indexes): the
cleanup Job is only made once the verify Job is gone, so the planner always sees one Job."""

from __future__ import annotations

from typing import Any

from model_garden.api import ModelVersion
from model_garden.api.common import Resources
from model_garden.api.labels import (
    LABEL_MODEL,
    LABEL_MV,
    LABEL_MV_UID,
)
from model_garden.storage.credentials import s3_env
from model_garden.storage.uris import is_hf, is_s3

from ..plan import child_meta, child_name, owner_labels
from ..podspec import (
    CACHE_ENV,
    compute,
    container_security_context,
    pod_security_context,
    scratch_volumes,
)
from ..settings import OperatorSettings
from ..storage import Location, Mounts, claim_sub_path, resolve

VERIFY_CONTAINER = "verify"
CLEANUP_CONTAINER = "cleanup"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"


def verify_job_name(mv_name: str) -> str:
    return child_name(mv_name, "verify")


def cleanup_job_name(mv_name: str) -> str:
    return child_name(mv_name, "cleanup")


def storage_env(mv: ModelVersion) -> list[dict[str, Any]]:
    """Env of a Job touching the artifact: the cache folders (a hub download lands there) and,
    for s3:// or hf://, the version's storage Secret (its HF_TOKEN too, for gated models)."""
    uri = mv.spec.artifact.uri
    env: list[dict[str, Any]] = list(CACHE_ENV)
    if is_s3(uri) or is_hf(uri):
        env += s3_env(mv.spec.storage_secret, hub=is_hf(uri))
    return env


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
    """A short Job that sizes and hashes the artifact (``model_garden.operator.verify``); a
    FineTuneJob's s3:// output must carry its completion marker (``--require-manifest``)."""
    mounts = Mounts()
    uri = mv.spec.artifact.uri
    path = mounts.add(resolve(uri))
    strict = ["--require-manifest"] if is_s3(uri) and mv.spec.source.fine_tune_job else []
    # The report's path said explicitly, so a runner that maps paths (local mode) sees it.
    args = ["--path", path, "--format", str(mv.spec.artifact.format), *strict]
    return _job(
        body,
        mv,
        settings,
        verify_job_name(mv.metadata.name),
        VERIFY_CONTAINER,
        ["python", "-m", "model_garden.operator.verify", *args],
        mounts,
    )


def cleanup_target(mv: ModelVersion, mounts: Mounts) -> str | None:
    """What the cleanup Job deletes (a path in its pod, or the s3:// URI), registering the
    mount it needs; None when nothing may be deleted: an hf:// cache copy, or a whole claim."""
    uri = mv.spec.artifact.uri
    if is_hf(uri):
        return None
    if is_s3(uri):
        return uri
    location = resolve(uri)
    if location.claim is None:
        return location.path  # file:// (local mode)
    sub = claim_sub_path(location)
    if not sub:
        return None
    # the parent is mounted writable, so the artifact's own folder can be removed, not only
    # emptied (a subPath mount point cannot be deleted)
    parent = location.path.rsplit("/", 1)[0]
    mounts.add(Location(parent, location.claim), writable=True)
    return location.path


def build_cleanup_job(
    body: dict[str, Any], mv: ModelVersion, settings: OperatorSettings, target: str
) -> dict[str, Any]:
    """A short Job deleting the artifact (``model_garden.storage.retention``) before the version
    goes, when ``spec.retention`` is Delete."""
    mounts = Mounts()
    cleanup_target(mv, mounts)
    return _job(
        body,
        mv,
        settings,
        cleanup_job_name(mv.metadata.name),
        CLEANUP_CONTAINER,
        ["python", "-m", "model_garden.storage.retention", "--target", target],
        mounts,
    )


def _job(
    body: dict[str, Any],
    mv: ModelVersion,
    settings: OperatorSettings,
    name: str,
    container_name: str,
    argv: list[str],
    mounts: Mounts,
) -> dict[str, Any]:
    job_labels = labels(mv)
    scratch, scratch_mounts = scratch_volumes(
        settings.tmp_size_limit, settings.cache_size_limit, shm_size_limit=settings.verify_memory
    )
    container = {
        "name": container_name,
        "image": settings.verify_image or settings.trainer_image,
        "command": argv[:3],
        "args": [*argv[3:], "--termination-log", TERMINATION_MESSAGE_PATH],
        "env": storage_env(mv),
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
        "metadata": child_meta(body, name, job_labels),
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
