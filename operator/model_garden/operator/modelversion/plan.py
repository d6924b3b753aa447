"""The ModelVersion planner: verify the artifact, keep lineage and lifetime emissions, and guard
deletion while the version (or an adapter built on it) is served.

A digest in the spec is a claim, not proof: an artifact on a claim the operator can mount is
always hashed by a verification Job, and a claimed digest or size that differs from what the
files hash to fails verification. Serving totals are copied from the namespace's
InferenceDeployments (``status.carbon.byModelVersion``) by this planner alone, so only the
version's own reconciler writes its status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from model_garden.api import InferenceDeployment, ModelVersion
from model_garden.api.common import ConditionStatus
from model_garden.api.display import format_emissions
from model_garden.api.labels import (
    ANNOTATION_EVALUATION,
    ANNOTATION_OPERATIONS_CARBON,
    FINALIZER_IN_USE,
)
from model_garden.api.modelversion import (
    USER_RECORDED_OPERATIONS,
    Evaluation,
    OperationCarbon,
    OperationKind,
)
from model_garden.carbon.grid import JOULES_PER_KWH, grid_intensity

from .. import observe
from ..plan import ObjectRef, Plan
from ..servingcarbon import serving_totals
from ..settings import OperatorSettings
from ..status import StatusDraft
from .objects import VERIFY_CONTAINER, build_verify_job
from .retention import plan_artifact_cleanup

VERIFY_WATTS_PER_THREAD = 4.0
"""CPU power per busy thread: CodeCarbon's default where it cannot read the CPU's (TDP/threads)."""


@dataclass
class ModelVersionWorld:
    """What the handler observed for one ModelVersion."""

    verify_job: dict[str, Any] | None = None
    """Its verification Job (matched by the version's uid)."""
    verify_pods: list[dict[str, Any]] = field(default_factory=list)
    serving_deployments: list[str] = field(default_factory=list)
    """InferenceDeployments that serve it: as model, as adapter, or as the base of an adapter."""
    deployments: list[dict[str, Any]] = field(default_factory=list)
    """The namespace's InferenceDeployment bodies (their ``status.carbon.byModelVersion``)."""


def _served_names(idep: InferenceDeployment) -> set[str]:
    names = {a.model_version for a in idep.spec.adapters}
    names.update(n for n in (idep.spec.model_version, idep.status.model_version) if n)
    names.update(t.model_version for t in idep.spec.traffic or [])  # a split serves both
    names.update(t.model_version for t in idep.status.traffic)
    return names


def serves(
    idep: InferenceDeployment,
    mv_name: str,
    model_versions: list[ModelVersion] = (),  # type: ignore[assignment]
) -> bool:
    """Whether a deployment serves ``mv_name`` (as model or adapter) or an adapter built on it."""
    served = _served_names(idep)
    if mv_name in served:
        return True
    return any(
        mv.metadata.name in served
        and str(mv.spec.artifact.format) == "adapter"
        and mv.spec.artifact.base_model == mv_name
        for mv in model_versions
    )


def serving_deployments(
    mv_name: str, ideps: list[InferenceDeployment], model_versions: list[ModelVersion]
) -> list[str]:
    """Names of the deployments that keep ``mv_name`` in use (sorted)."""
    return sorted(
        i.metadata.name
        for i in ideps
        if not (i.metadata.model_extra or {}).get("deletionTimestamp")
        and serves(i, mv_name, model_versions)
    )


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


def _mismatch(mv: ModelVersion, report: dict[str, Any]) -> str | None:
    """What the spec claims that the files contradict, if anything."""
    claimed = mv.spec.artifact
    wrong = []
    if claimed.digest and claimed.digest != report.get("digest"):
        wrong.append(
            f"spec.artifact.digest is {claimed.digest} but the files hash to {report.get('digest')}"
        )
    size = int(report.get("sizeBytes", 0))
    if claimed.size_bytes is not None and claimed.size_bytes != size:
        wrong.append(
            f"spec.artifact.sizeBytes is {claimed.size_bytes} but the files hold {size} bytes"
        )
    return "; ".join(wrong) or None


def _finalizers(plan: Plan, ref: ObjectRef, meta: dict[str, Any], finalizers: list[str]) -> None:
    plan.patch.append(
        (
            ref,
            {
                "metadata": {
                    "finalizers": finalizers,
                    "resourceVersion": meta.get("resourceVersion"),
                }
            },
        )
    )


def latest_evaluation(mv: ModelVersion) -> dict[str, Any] | None:
    """status.evaluation: the latest ``mg eval`` (the annotation it writes), else the
    evaluation at the end of training. An annotation that is not an Evaluation is ignored."""
    written = (mv.metadata.annotations or {}).get(ANNOTATION_EVALUATION)
    if written:
        try:
            return Evaluation.model_validate_json(written).to_wire()
        except ValueError:
            pass
    if mv.spec.evaluation is not None:
        return mv.spec.evaluation.to_status().to_wire()
    return None


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
    st = StatusDraft(mv, now)
    serving = sorted(world.serving_deployments)
    st.fields["servingDeployments"] = serving
    finalizers = list(meta.get("finalizers") or [])

    if meta.get("deletionTimestamp"):
        if serving:
            message = (
                f"Deletion is blocked: InferenceDeployment(s) {', '.join(serving)} serve this"
                " version (or an adapter built on it). Point them at another version (or delete"
                " them); deletion then completes."
            )
            if st.set_condition("Ready", ConditionStatus.FALSE, "DeletionBlocked", message):
                plan.event("Warning", "DeletionBlocked", message)
        elif FINALIZER_IN_USE in finalizers and plan_artifact_cleanup(
            plan, st, body, mv, world, settings
        ):
            _finalizers(plan, ref, meta, [f for f in finalizers if f != FINALIZER_IN_USE])
        plan.status = st.patch()
        return plan

    if FINALIZER_IN_USE not in finalizers:
        _finalizers(plan, ref, meta, [*finalizers, FINALIZER_IN_USE])

    training = mv.spec.training_carbon
    training_kg = float(training.emissions_kg) if training else 0.0
    st.fields["trainingEmissionsKg"] = training_kg
    evaluation = latest_evaluation(mv)
    if evaluation is not None:
        st.fields["evaluation"] = evaluation
    shares = serving_totals(
        mv.metadata.name, list(st.current.get("servingByDeployment") or []), world.deployments
    )
    st.fields.update(shares)
    verification = _plan_verification(plan, st, body, mv, world, settings)
    by_kind = carbon_by_operation(mv, st.fields, verification, st.current)
    st.fields["carbonByOperation"] = {k: v.to_wire() for k, v in by_kind.items()}
    lifetime = sum(v.emissions_kg for v in by_kind.values())
    st.fields["lifetimeEmissionsKg"] = lifetime
    tokens = int(st.fields.get("tokensServed") or 0)
    st.fields["lifetimeGramsPer1KTokens"] = lifetime * 1e6 / tokens if tokens else None
    st.fields["lifetimeEmissions"] = format_emissions(lifetime)
    plan.status = st.patch()
    return plan


def verification_carbon(report: dict[str, Any], settings: OperatorSettings) -> OperationCarbon:
    """The verification Job's carbon: its CPU time at a per-thread power, at the cluster's
    grid (estimated: the Job is too short for a tracker to start)."""
    kwh = float(report.get("cpuSeconds") or 0.0) * VERIFY_WATTS_PER_THREAD / JOULES_PER_KWH
    grid = grid_intensity(settings.default_country, settings.default_region)
    return OperationCarbon(energy_kwh=kwh, emissions_kg=kwh * grid.g_per_kwh / 1000.0, count=1)


def user_recorded(mv: ModelVersion) -> dict[str, OperationCarbon]:
    """What the CLI recorded in the annotation; kinds the operator observes itself and figures
    that are not an OperationCarbon are ignored."""
    try:
        written = json.loads(mv.metadata.annotations.get(ANNOTATION_OPERATIONS_CARBON) or "{}")
    except ValueError:
        return {}
    out: dict[str, OperationCarbon] = {}
    for kind in USER_RECORDED_OPERATIONS:
        if isinstance(written, dict) and kind.value in written:
            try:
                out[kind.value] = OperationCarbon.model_validate(written[kind.value])
            except ValueError:
                continue
    return out


def carbon_by_operation(
    mv: ModelVersion,
    fields: dict[str, Any],
    verification: OperationCarbon | None,
    current: dict[str, Any],
) -> dict[str, OperationCarbon]:
    """Every kind of operation on this version with its energy and emissions: training (the
    job's result, its merge included), verification (our Job; kept once the Job is gone),
    serving (the meters' shares), and what the CLI recorded (export, evaluation, batch)."""
    out: dict[str, OperationCarbon] = {}
    training = mv.spec.training_carbon
    if training is not None:
        out[OperationKind.TRAINING] = OperationCarbon(
            energy_kwh=float(training.energy_kwh),
            emissions_kg=float(training.emissions_kg),
            count=1,
            method=training.method,
        )
    if verification is None:
        kept = (current.get("carbonByOperation") or {}).get(OperationKind.VERIFICATION)
        verification = OperationCarbon.model_validate(kept) if kept else None
    if verification is not None:
        out[OperationKind.VERIFICATION] = verification
    out.update(user_recorded(mv))
    served = list(fields.get("servingByDeployment") or [])
    if served:
        out[OperationKind.SERVING] = OperationCarbon(
            energy_kwh=float(fields.get("servingEnergyKwh") or 0.0),
            emissions_kg=float(fields.get("servingEmissionsKg") or 0.0),
            count=len(served),
        )
    return {str(k): v for k, v in out.items()}


def _plan_verification(
    plan: Plan,
    st: StatusDraft,
    body: dict[str, Any],
    mv: ModelVersion,
    world: ModelVersionWorld,
    settings: OperatorSettings,
) -> OperationCarbon | None:
    """Verify the artifact once; the verification's carbon when its report is read now."""
    artifact = mv.spec.artifact
    if st.current.get("digest") and st.current.get("sizeBytes") is not None:
        return None  # verified earlier by our Job
    if not artifact.uri.startswith(("pvc://", "s3://", "hf://")):
        claimed = (
            f" (the claimed digest {artifact.digest} is not checked)" if artifact.digest else ""
        )
        st.set_condition(
            "Ready",
            ConditionStatus.TRUE,
            "NotVerified",
            f"{artifact.uri} is not on a claim the operator can mount, so it is served as is"
            f" without a size or digest check{claimed}.",
        )
        return None
    job = world.verify_job
    finished = observe.job_finished(job) if job else None
    report, error = _verification(world)
    if report is not None:
        error = _mismatch(mv, report)
    if job is None and report is None:
        plan.create.append(build_verify_job(body, mv, settings))
        source = mv.spec.source.fine_tune_job
        claim = f" and compares it with what FineTuneJob {source} reported" if source else ""
        message = (
            f"Verifying {artifact.uri}: a Job checks the files and computes the digest{claim}."
        )
        if st.set_condition("Ready", ConditionStatus.FALSE, "Verifying", message):
            plan.event("Normal", "Verifying", message)
    elif report is not None and error is None:
        st.fields["digest"] = report["digest"]
        st.fields["sizeBytes"] = int(report.get("sizeBytes", 0))
        message = f"Verified {artifact.uri}: {st.fields['sizeBytes']} bytes, {st.fields['digest']}."
        if st.set_condition("Ready", ConditionStatus.TRUE, "Verified", message):
            plan.event("Normal", "Verified", message)
        return verification_carbon(report, settings)
    elif finished == "Failed" or error:
        message = (
            f"Verification of {artifact.uri} failed: {error or 'the Job failed'}. Fix the"
            " artifact (config.json or adapter_config.json, weights, tokenizer) and recreate"
            " this ModelVersion."
        )
        if st.set_condition("Ready", ConditionStatus.FALSE, "VerificationFailed", message):
            plan.event("Warning", "VerificationFailed", message)
    return None
