"""ModelVersion: verify the artifact, keep lineage and lifetime emissions, guard deletion while served."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from model_garden.api import ModelVersion
from model_garden.api.common import ConditionStatus, Resources, set_condition

from . import observe
from .plan import (
    FINALIZER_IN_USE,
    LABEL_COMPONENT,
    LABEL_MODEL,
    LABEL_MV,
    MANAGED_BY,
    OPERATOR_NAME,
    ObjectRef,
    Plan,
    child_meta,
    child_name,
    status_patch,
)
from .podspec import compute, container_security_context, pod_security_context, scratch_volumes
from .settings import OperatorSettings
from .storage import Mounts, resolve

VERIFY_CONTAINER = "verify"


def verify_job_name(mv_name: str) -> str:
    return child_name(mv_name, "verify")


@dataclass
class ModelVersionWorld:
    verify_job: dict[str, Any] | None = None
    verify_pods: list[dict[str, Any]] = field(default_factory=list)
    serving_deployments: list[str] = field(default_factory=list)
    """InferenceDeployments in the namespace that serve this version (as model or adapter)."""


def serves(idep: dict[str, Any], mv_name: str) -> bool:
    """Whether an InferenceDeployment body serves (or is set to serve) ``mv_name``."""
    spec = idep.get("spec") or {}
    status = idep.get("status") or {}
    if spec.get("modelVersion") == mv_name or status.get("modelVersion") == mv_name:
        return True
    return any(a.get("modelVersion") == mv_name for a in spec.get("adapters") or [])


def build_verify_job(
    body: dict[str, Any], mv: ModelVersion, settings: OperatorSettings
) -> dict[str, Any]:
    """A short Job that sizes and hashes an imported artifact (``model_garden.operator.verify``)."""
    mounts = Mounts()
    path = mounts.add(resolve(mv.spec.artifact.uri))
    labels = {
        MANAGED_BY: OPERATOR_NAME,
        LABEL_MV: mv.metadata.name,
        LABEL_MODEL: mv.spec.model,
        LABEL_COMPONENT: "verify",
    }
    scratch, scratch_mounts = scratch_volumes()
    container = {
        "name": VERIFY_CONTAINER,
        "image": settings.verify_image or settings.trainer_image,
        "command": ["python", "-m", "model_garden.operator.verify"],
        "args": ["--path", path, "--format", mv.spec.artifact.format],
        "resources": compute(Resources(), settings.verify_cpu, settings.verify_memory),
        "securityContext": container_security_context(),
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": mounts.volume_mounts() + scratch_mounts,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_meta(body, verify_job_name(mv.metadata.name), labels),
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": 3600,
            "template": {
                "metadata": {"labels": labels},
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


def _verification(world: ModelVersionWorld) -> tuple[dict[str, Any] | None, str | None]:
    """(report, error) from the verification pod's termination message."""
    for pod in observe.newest_first(world.verify_pods):
        term = observe.terminated(pod, VERIFY_CONTAINER)
        if not term:
            continue
        try:
            report = json.loads(term.get("message") or "")
        except ValueError:
            report = None
        if isinstance(report, dict) and "digest" in report and term.get("exitCode") == 0:
            return report, None
        if isinstance(report, dict) and report.get("error"):
            return None, str(report["error"])
        return None, (term.get("message") or f"exit code {term.get('exitCode')}").strip()[-500:]
    return None, None


def plan_modelversion(
    body: dict[str, Any],
    world: ModelVersionWorld,
    settings: OperatorSettings,
    now: datetime,
) -> Plan:
    """Ready once verified; lineage and emissions in status; a finalizer while it is served."""
    mv = ModelVersion.model_validate(body)
    plan = Plan()
    meta = body["metadata"]
    ref = ObjectRef(body["apiVersion"], body["kind"], meta["namespace"], meta["name"])
    gen = mv.metadata.generation
    conds = list(mv.status.conditions)
    current = mv.status.to_wire()
    fields: dict[str, Any] = dict(current)
    fields["observedGeneration"] = gen
    serving = sorted(world.serving_deployments)
    fields["servingDeployments"] = serving
    finalizers = list(meta.get("finalizers") or [])

    def set_cond(type: str, status: ConditionStatus, reason: str, message: str) -> bool:
        nonlocal conds
        before = next((c for c in conds if c.type == type), None)
        conds = set_condition(conds, type, status, reason, message, gen, now)
        return before is None or before.status != status or before.reason != reason

    if meta.get("deletionTimestamp"):
        if serving:
            message = (
                f"Deletion is blocked: InferenceDeployment(s) {', '.join(serving)} serve this"
                " version. Point them at another version (or delete them); deletion then completes."
            )
            if set_cond("Ready", ConditionStatus.FALSE, "DeletionBlocked", message):
                plan.event("Warning", "DeletionBlocked", message)
        elif FINALIZER_IN_USE in finalizers:
            plan.patch.append(
                (
                    ref,
                    {
                        "metadata": {
                            "finalizers": [f for f in finalizers if f != FINALIZER_IN_USE],
                            "resourceVersion": meta.get("resourceVersion"),
                        }
                    },
                )
            )
        fields["conditions"] = [c.to_wire() for c in conds]
        plan.status = status_patch(current, fields)
        return plan

    if FINALIZER_IN_USE not in finalizers:
        plan.patch.append(
            (
                ref,
                {
                    "metadata": {
                        "finalizers": [*finalizers, FINALIZER_IN_USE],
                        "resourceVersion": meta.get("resourceVersion"),
                    }
                },
            )
        )

    artifact = mv.spec.artifact
    training = mv.spec.training_carbon
    training_kg = float(training.emissions_kg) if training else 0.0
    fields["trainingEmissionsKg"] = training_kg
    fields["lifetimeEmissionsKg"] = training_kg + float(current.get("servingEmissionsKg") or 0.0)

    if artifact.digest and artifact.size_bytes is not None:
        fields["digest"] = artifact.digest
        fields["sizeBytes"] = artifact.size_bytes
        source = mv.spec.source.fine_tune_job
        origin = f"FineTuneJob {source}" if source else "the creator"
        if set_cond(
            "Ready",
            ConditionStatus.TRUE,
            "Verified",
            f"Artifact {artifact.uri}: {artifact.size_bytes} bytes, {artifact.digest} as reported by {origin}.",
        ):
            plan.event("Normal", "Ready", f"ModelVersion {mv.metadata.name} is ready.")
    elif current.get("digest") and current.get("sizeBytes") is not None:
        pass  # verified earlier by our Job
    elif not artifact.uri.startswith("pvc://"):
        set_cond(
            "Ready",
            ConditionStatus.TRUE,
            "NotVerified",
            f"{artifact.uri} is not on a claim the operator can mount, so it is served as is"
            " without a size or digest check.",
        )
    else:
        job = world.verify_job
        finished = observe.job_finished(job) if job else None
        report, error = _verification(world)
        if job is None:
            plan.create.append(build_verify_job(body, mv, settings))
            message = f"Verifying {artifact.uri}: a Job checks the files and computes the digest."
            if set_cond("Ready", ConditionStatus.FALSE, "Verifying", message):
                plan.event("Normal", "Verifying", message)
        elif report is not None:
            fields["digest"] = report["digest"]
            fields["sizeBytes"] = int(report.get("sizeBytes", 0))
            message = f"Verified {artifact.uri}: {fields['sizeBytes']} bytes, {fields['digest']}."
            if set_cond("Ready", ConditionStatus.TRUE, "Verified", message):
                plan.event("Normal", "Verified", message)
        elif finished == "Failed" or error:
            message = (
                f"Verification of {artifact.uri} failed: {error or 'the Job failed'}. Fix the"
                " artifact (config.json or adapter_config.json, weights, tokenizer) and recreate"
                " this ModelVersion."
            )
            if set_cond("Ready", ConditionStatus.FALSE, "VerificationFailed", message):
                plan.event("Warning", "VerificationFailed", message)
    fields["conditions"] = [c.to_wire() for c in conds]
    plan.status = status_patch(current, fields)
    return plan
