"""A deleted ModelVersion's artifact under ``spec.retention``: Retain leaves it, Delete removes it.

Why a Job and not the operator: the operator reads no Secrets and mounts no claims, while a Job
can be given both (the claim mounted writable, or the storage Secret as env), so one mechanism
serves pvc://, file:// (local mode) and s3://. The version's finalizer stays until the Job
succeeded; if it fails, the version says why and waits: fix the cause, or set retention to
Retain to let it go without deleting.
"""

from __future__ import annotations

import json
from typing import Any

from model_garden.api import ModelVersion
from model_garden.api.common import ConditionStatus
from model_garden.api.modelversion import Retention

from .. import observe
from ..plan import EventType, ObjectRef, Plan
from ..settings import OperatorSettings
from ..status import StatusDraft
from ..storage import Mounts
from .objects import CLEANUP_CONTAINER, build_cleanup_job, cleanup_job_name, cleanup_target


def _report(pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The cleanup pod's JSON report (``deleted`` or ``error``), newest pod first."""
    for pod in observe.newest_first(pods):
        term = observe.terminated(pod, CLEANUP_CONTAINER)
        if not term:
            continue
        try:
            report = json.loads(term.get("message") or "")
        except ValueError:
            report = None
        if isinstance(report, dict):
            return report
        return {"error": (term.get("message") or f"exit code {term.get('exitCode')}")[-500:]}
    return {}


def _say(plan: Plan, st: StatusDraft, kind: EventType, reason: str, message: str) -> None:
    if st.set_condition("Ready", ConditionStatus.FALSE, reason, message):
        plan.event(kind, reason, message)


def plan_artifact_cleanup(
    plan: Plan,
    st: StatusDraft,
    body: dict[str, Any],
    mv: ModelVersion,
    world: Any,
    settings: OperatorSettings,
) -> bool:
    """Plan the next step of deleting the artifact; True once the finalizer may be removed."""
    if mv.spec.retention != Retention.DELETE:
        return True
    uri = mv.spec.artifact.uri
    target = cleanup_target(mv, Mounts())
    if target is None:
        why = (
            "an hf:// artifact is only a cached download"
            if uri.startswith("hf://")
            else "it is a whole claim"
        )
        _say(plan, st, "Warning", "CleanupSkipped", f"retention Delete: {uri} is kept, {why}.")
        return True
    meta = body["metadata"]
    job = world.verify_job
    name = cleanup_job_name(mv.metadata.name)
    if job is not None and job["metadata"]["name"] != name:
        # the verification Job holds the version's one Job slot: it goes first
        plan.delete.append(ObjectRef("batch/v1", "Job", meta["namespace"], job["metadata"]["name"]))
        _say(plan, st, "Normal", "DeletingArtifact", f"retention Delete: deleting {uri}.")
        return False
    if job is None:
        plan.create.append(build_cleanup_job(body, mv, settings, target))
        _say(plan, st, "Normal", "DeletingArtifact", f"retention Delete: a Job deletes {uri}.")
        return False
    finished = observe.job_finished(job)
    report = _report(world.verify_pods)
    if finished == "Complete":
        plan.event(
            "Normal", "ArtifactDeleted", f"Deleted {uri} ({report.get('deleted', 0)} files)."
        )
        return True
    if finished == "Failed":
        _say(
            plan,
            st,
            "Warning",
            "CleanupFailed",
            f"retention Delete: deleting {uri} failed: {report.get('error', 'the Job failed')}."
            " Fix the cause and delete the Job to retry, or set spec.retention to Retain to"
            " delete the version and keep the files.",
        )
    return False
