"""The FineTuneJob planner: start its Job, follow it, and produce its ModelVersion once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from model_garden.api import FineTuneJob, ModelVersion, version_name
from model_garden.api.common import CarbonReport, ConditionStatus
from model_garden.api.contracts import TrainingProgress
from model_garden.api.display import planned_total_steps, round_loss
from model_garden.api.finetunejob import TrainingCarbonStatus, TrainingProgressStatus
from model_garden.api.labels import LABEL_FTJ_UID

from .. import observe
from ..plan import ObjectRef, Plan
from ..policy import Policy, PolicyError, check_finetunejob, in_force, refusals_message
from ..settings import OperatorSettings
from ..status import StatusDraft
from ..storage import Mounts
from .admission import budget_raised, is_done, reserved_version, waits_for_slot
from .diagnose import Diagnosis, diagnose_failure, diagnose_pending, find_result
from .objects import (
    build_config_map,
    build_job,
    build_model_version,
    build_training_config,
    choose_artifact,
    config_map_name,
    output_uri,
)

RESULT_GRACE_SECONDS = 60
"""How long a completed Job may wait for its pod's termination message to be observed."""
STARTING_MESSAGE = "Job created; waiting for the trainer pod to start."
SUSPENDED_MESSAGE = "The job is suspended (spec.suspend is true)."


def kueue_message(queue: str) -> str:
    return f"The Job waits, suspended, for Kueue to admit it to LocalQueue {queue}."


@dataclass
class FineTuneJobWorld:
    """What the handler observed for one FineTuneJob (kopf's indexes and the admission)."""

    job: dict[str, Any] | None = None
    """Its batch/v1 Job (matched by the FineTuneJob's uid)."""
    pods: list[dict[str, Any]] = field(default_factory=list)
    model_versions: list[ModelVersion] = field(default_factory=list)
    """ModelVersions of the namespace, parsed."""
    reserved_versions: set[int] = field(default_factory=set)
    """Versions of this model reserved by other FineTuneJobs' Jobs that have not failed."""
    base_model_version: ModelVersion | None = None
    running_in_namespace: int = 0
    """Active Jobs of other FineTuneJobs in the namespace (not finished, not suspended)."""
    older_waiting: int = 0
    """FineTuneJobs in the namespace created before this one and still waiting for a slot."""
    progress: TrainingProgress | None = None
    policy: Policy | PolicyError | None = None
    """The admin policy in force (None: the documented default, no ConfigMap); checked only
    before the Job exists: a running job is not stopped by a later policy change."""


def next_version(model: str, model_versions: list[ModelVersion], reserved: set[int]) -> int:
    """1 + the highest version of ``model`` that exists or another job has reserved."""
    taken = {mv.spec.version for mv in model_versions if mv.spec.model == model}
    return max(taken | reserved | {0}) + 1


def _progress_status(ftj: FineTuneJob, progress: TrainingProgress) -> dict[str, Any]:
    total = planned_total_steps(ftj.spec.hyperparameters.max_steps, progress.total_steps)
    return TrainingProgressStatus(
        step=progress.step,
        total_steps=total or 0,
        epoch=progress.epoch,
        loss=round_loss(progress.loss),
        eval_loss=round_loss(progress.eval_loss),
        learning_rate=progress.learning_rate,
        tokens_per_second=progress.tokens_per_second,
        eta_seconds=progress.eta_seconds,
    ).to_wire()


def _record_carbon(st: StatusDraft, report: CarbonReport) -> None:
    """status.carbon: the exact figures and ``emissions``, the one ``kubectl get`` shows."""
    st.fields["carbon"] = TrainingCarbonStatus.of(report).to_wire()


def plan_finetunejob(
    body: dict[str, Any],
    world: FineTuneJobWorld,
    settings: OperatorSettings,
    now: datetime,
) -> Plan:
    """Drive one FineTuneJob: start its Job, follow it, and produce its ModelVersion once."""
    ftj = FineTuneJob.model_validate(body)
    plan = Plan()
    st = StatusDraft(ftj, now)
    ns = ftj.metadata.namespace or "default"

    if is_done(ftj):
        plan.status = st.patch()
        return plan

    job = world.job
    if budget_raised(ftj):
        _plan_resume(plan, st, body, ftj, world, settings)
        plan.status = st.patch()
        return plan
    if job is None:
        _plan_start(plan, st, body, ftj, world, settings)
        plan.status = st.patch()
        return plan

    version = reserved_version(job, ftj.output_model)
    st.fields["jobName"] = job["metadata"]["name"]
    if st.current.get("jobName") and ftj.metadata.generation and ftj.status.observed_generation:
        if ftj.metadata.generation > ftj.status.observed_generation:
            plan.event(
                "Normal",
                "SpecChangeIgnored",
                "The spec changed while the job exists: only spec.suspend takes effect;"
                " create a new FineTuneJob to train with other settings.",
            )

    # suspend: ours to drive without Kueue; with Kueue we only ever suspend.
    job_suspended = bool((job.get("spec") or {}).get("suspend", False))
    finished = observe.job_finished(job)
    ref = ObjectRef("batch/v1", "Job", ns, job["metadata"]["name"])
    if finished is None and job_suspended != ftj.spec.suspend:
        if not ftj.spec.queue_name or ftj.spec.suspend:
            plan.patch.append((ref, {"spec": {"suspend": ftj.spec.suspend}}))
            job_suspended = ftj.spec.suspend
            plan.event(
                "Normal",
                "Suspended" if ftj.spec.suspend else "Resumed",
                f"{'Suspending' if ftj.spec.suspend else 'Resuming'} Job {ref.name}"
                + (" (the trainer checkpoints on SIGTERM)." if ftj.spec.suspend else "."),
            )

    if finished == "Complete":
        _plan_success(plan, st, ftj, world, version, job)
    elif finished == "Failed":
        diagnosis, result = diagnose_failure(ftj, job, world.pods)
        _fail(plan, st, diagnosis)
        if result is not None:
            _record_carbon(st, result.carbon)
            if result.backend:
                st.fields["backend"] = result.backend
    elif job_suspended:
        if ftj.spec.queue_name and not ftj.spec.suspend:
            reason, message = "Queued", kueue_message(ftj.spec.queue_name)
        else:
            reason, message = "Suspended", SUSPENDED_MESSAGE
        if st.set_condition("Running", ConditionStatus.FALSE, reason, message):
            plan.event("Normal", reason, message)
    else:
        _plan_running(plan, st, ftj, world, settings, ref)

    plan.status = st.patch()
    return plan


def _fail(plan: Plan, st: StatusDraft, diagnosis: Diagnosis) -> None:
    st.set_condition("Running", ConditionStatus.FALSE, diagnosis.reason, diagnosis.message)
    st.set_condition("Succeeded", ConditionStatus.FALSE, diagnosis.reason, diagnosis.message)
    if st.set_condition("Failed", ConditionStatus.TRUE, diagnosis.reason, diagnosis.message):
        plan.event("Warning", diagnosis.reason, diagnosis.message)
    st.stamp("completionTime")


def _plan_start(
    plan: Plan,
    st: StatusDraft,
    body: dict[str, Any],
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    settings: OperatorSettings,
) -> None:
    refusals = check_finetunejob(ftj.spec, in_force(world.policy, settings))
    if refusals:
        message = (
            f"Refused by the admin policy: {refusals_message(refusals)}. Nothing was created;"
            " change the spec (or ask an admin to change the policy): the job starts then."
        )
        if st.set_condition("Running", ConditionStatus.FALSE, "PolicyRefused", message):
            plan.event("Warning", "PolicyRefused", message)
        return
    source = ftj.spec.base_model
    if source.model_version is not None:
        base = world.base_model_version
        if base is None:
            message = (
                f"ModelVersion {source.model_version.name} (spec.baseModel.modelVersion) does"
                " not exist in this namespace; create it or fix the reference."
            )
            if st.set_condition("Running", ConditionStatus.FALSE, "BaseModelNotFound", message):
                plan.event("Warning", "BaseModelNotFound", message)
            return
        if not any(c.type == "Ready" and c.status == "True" for c in base.status.conditions):
            message = f"Waiting for ModelVersion {source.model_version.name} to become Ready."
            st.set_condition("Running", ConditionStatus.FALSE, "BaseModelNotReady", message)
            return
    cap = settings.max_running_per_namespace
    if waits_for_slot(ftj, world.running_in_namespace, world.older_waiting, cap):
        message = (
            f"Waiting for a slot: {world.running_in_namespace} FineTuneJob(s) running and"
            f" {world.older_waiting} queued ahead in this namespace; the operator runs at most"
            f" {cap} at once (maxRunningPerNamespace)."
        )
        if st.set_condition("Running", ConditionStatus.FALSE, "Queued", message):
            plan.event("Normal", "Queued", message)
        return
    version = next_version(ftj.output_model, world.model_versions, world.reserved_versions)
    mounts = Mounts()
    config = build_training_config(ftj, version, settings, mounts, world.base_model_version)
    plan.create.append(build_config_map(body, ftj, config))
    job = build_job(body, ftj, version, settings, mounts)
    plan.create.append(job)
    st.fields["jobName"] = job["metadata"]["name"]
    max_steps = ftj.spec.hyperparameters.max_steps
    if max_steps and not st.fields.get("progress"):
        st.fields["progress"] = TrainingProgressStatus(total_steps=max_steps).to_wire()
    target = version_name(ftj.output_model, version)
    if ftj.spec.queue_name:
        reason, message = "Queued", kueue_message(ftj.spec.queue_name)
    elif ftj.spec.suspend:
        reason, message = "Suspended", SUSPENDED_MESSAGE
    else:
        reason, message = "Starting", STARTING_MESSAGE
    st.set_condition("Running", ConditionStatus.FALSE, reason, message)
    plan.event(
        "Normal",
        "JobCreated",
        f"Created Job {job['metadata']['name']} training {target} into {output_uri(ftj, version)}.",
        if_created=job["metadata"]["name"],
    )


RESUMING_MESSAGE = (
    "spec.carbon.budgetKg was raised above the emissions so far: removing the stopped Job,"
    " then resuming from the last checkpoint."
)


def _plan_resume(
    plan: Plan,
    st: StatusDraft,
    body: dict[str, Any],
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    settings: OperatorSettings,
) -> None:
    """A budget-stopped job whose budget was raised: first remove the stopped Job and its
    config (which holds the old budget), then start again the normal way; the trainer resumes
    from the checkpoint, since the run key leaves the budget out. Failed stays True until the
    new Job exists, so the old Job's failure is never read as the new run's."""
    ns = ftj.metadata.namespace or "default"
    if world.job is not None:
        plan.delete.append(ObjectRef("batch/v1", "Job", ns, world.job["metadata"]["name"]))
        plan.delete.append(ObjectRef("v1", "ConfigMap", ns, config_map_name(ftj.metadata.name)))
        if st.set_condition("Running", ConditionStatus.FALSE, "Resuming", RESUMING_MESSAGE):
            plan.event("Normal", "BudgetRaised", RESUMING_MESSAGE)
        return
    _plan_start(plan, st, body, ftj, world, settings)
    if any(obj["kind"] == "Job" for obj in plan.create):
        message = "Resumed after spec.carbon.budgetKg was raised."
        st.set_condition("Failed", ConditionStatus.FALSE, "Resumed", message)
        st.set_condition("Succeeded", ConditionStatus.FALSE, "Resumed", message)
        st.fields["completionTime"] = None  # a merge patch's null removes it


def _plan_running(
    plan: Plan,
    st: StatusDraft,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    settings: OperatorSettings,
    ref: ObjectRef,
) -> None:
    trouble = diagnose_pending(ftj, world.job, world.pods, st.now, settings.stuck_timeout_seconds)
    if trouble is not None and trouble.terminal:
        _fail(plan, st, trouble)
        plan.delete.append(ref)
        return
    if trouble is not None:
        if st.set_condition("Running", ConditionStatus.FALSE, trouble.reason, trouble.message):
            plan.event("Warning", trouble.reason, trouble.message)
        return
    running = any((p.get("status") or {}).get("phase") == "Running" for p in world.pods)
    if not running:
        st.set_condition("Running", ConditionStatus.FALSE, "Starting", STARTING_MESSAGE)
        return
    progress = world.progress
    if progress is not None:
        st.fields["progress"] = _progress_status(ftj, progress)
        carbon = TrainingCarbonStatus.model_validate(st.fields.get("carbon") or {})
        _record_carbon(
            st,
            carbon.model_copy(
                update={
                    "energy_kwh": progress.energy_kwh,
                    "emissions_kg": progress.emissions_kg,
                    "method": progress.carbon_method,
                    "country": ftj.spec.carbon.country or settings.default_country,
                    "region": ftj.spec.carbon.region or settings.default_region,
                }
            ),
        )
        budget = ftj.spec.carbon.budget_kg
        if budget is not None and progress.emissions_kg > float(budget):
            _fail(
                plan,
                st,
                Diagnosis(
                    "CarbonBudgetExceeded",
                    f"Emissions reached {progress.emissions_kg:.4g} kg CO2e, above"
                    f" spec.carbon.budgetKg ({budget}); the job was stopped (its checkpoint is"
                    " kept). Raise the budget or train fewer steps.",
                    True,
                ),
            )
            plan.delete.append(ref)
            return
    step = f" (step {progress.step}/{progress.total_steps})" if progress else ""
    message = f"The trainer is running{step}."
    if st.set_condition("Running", ConditionStatus.TRUE, "Training", message):
        plan.event("Normal", "Running", "The trainer pod is running.")
    st.stamp("startTime")


def _plan_success(
    plan: Plan,
    st: StatusDraft,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    version: int | None,
    job: dict[str, Any],
) -> None:
    result = find_result(world.pods)
    if result is None:
        completed = observe.parse_time((job.get("status") or {}).get("completionTime"))
        if completed is not None and (st.now - completed).total_seconds() < RESULT_GRACE_SECONDS:
            return  # the pod's final status has not been observed yet
        _fail(
            plan,
            st,
            Diagnosis(
                "ResultMissing",
                "The Job completed but no TrainingResult was found in its pod's termination"
                " message (the pod may have been deleted); the artifacts may still be at"
                f" {output_uri(ftj, version or 0)}. Import them with a ModelVersion.",
                True,
            ),
        )
        return
    artifact = choose_artifact(ftj, result)
    if artifact is None:
        _fail(
            plan,
            st,
            Diagnosis("NoArtifact", "The trainer succeeded but reported no artifact.", True),
        )
        return
    model = ftj.output_model
    uid = ftj.metadata.uid
    ours = [
        mv for mv in world.model_versions if uid and mv.metadata.labels.get(LABEL_FTJ_UID) == uid
    ]
    if ours:
        name = ours[0].metadata.name
    else:
        taken = {mv.spec.version for mv in world.model_versions if mv.spec.model == model}
        number = version if version is not None and version not in taken else None
        if number is None:
            number = next_version(model, world.model_versions, world.reserved_versions)
        name = version_name(model, number)
        plan.create.append(build_model_version(ftj, name, number, result, artifact))
        plan.event(
            "Normal",
            "ModelVersionCreated",
            f"Created ModelVersion {name} ({artifact['uri']}).",
            if_created=name,
        )
    st.fields["modelVersion"] = name
    _record_carbon(st, result.carbon)
    if result.backend:
        st.fields["backend"] = result.backend
    metrics = result.metrics
    progress = dict(st.fields.get("progress") or {})
    progress.update({"step": metrics.steps, "epoch": metrics.epochs})
    progress.setdefault("totalSteps", metrics.steps)
    if metrics.train_loss is not None:
        progress["loss"] = round_loss(metrics.train_loss)
    if metrics.eval_loss is not None:
        progress["evalLoss"] = round_loss(metrics.eval_loss)
    progress.pop("etaSeconds", None)
    st.fields["progress"] = progress
    st.stamp("completionTime", (job.get("status") or {}).get("completionTime"))
    message = f"Training finished; produced ModelVersion {name}."
    st.set_condition("Running", ConditionStatus.FALSE, "Completed", message)
    st.set_condition("Failed", ConditionStatus.FALSE, "Completed", message)
    if st.set_condition("Succeeded", ConditionStatus.TRUE, "Completed", message):
        plan.event("Normal", "Succeeded", message)
