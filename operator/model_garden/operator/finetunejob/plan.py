"""The FineTuneJob planner: start its Job, follow it, and produce its ModelVersion once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from model_garden.api import FineTuneJob, ModelVersion, version_name
from model_garden.api.common import CarbonReport, ConditionStatus
from model_garden.api.contracts import TrainingProgress, TrainingResult
from model_garden.api.display import planned_total_steps, round_loss
from model_garden.api.finetunejob import (
    SchedulingStatus,
    TrainingCarbonStatus,
    TrainingProgressStatus,
)
from model_garden.api.labels import LABEL_EXPERIMENT, LABEL_FTJ_UID

from .. import observe
from ..plan import ObjectRef, Plan
from ..policy import Policy, PolicyError, check_finetunejob, in_force, refusals_message
from ..settings import OperatorSettings
from ..status import StatusDraft
from ..storage import Mounts
from . import kepler, multinode, schedule, workload
from .admission import budget_raised, is_done, reserved_version, waits_for_slot
from .diagnose import (
    Diagnosis,
    diagnose_failure,
    diagnose_pending,
    find_result,
    unretryable_attempt,
)
from .objects import (
    TRAINER_EXIT_BAD_INPUT,
    TRAINER_EXIT_INVALID_CONFIG,
    build_config_map,
    build_job,
    build_model_version,
    build_training_config,
    choose_artifact,
    config_map_name,
    output_uri,
)

RESULT_GRACE_SECONDS = 60
UNRETRYABLE_EXIT_CODES = (TRAINER_EXIT_INVALID_CONFIG, TRAINER_EXIT_BAD_INPUT)
"""Exit codes no retry can fix: the Job's podFailurePolicy FailJob codes (objects.py)."""
"""How long a completed Job may wait for its pod's termination message to be observed."""
STARTING_MESSAGE = "Job created; waiting for the trainer pod to start."
SUSPENDED_MESSAGE = "The job is suspended (spec.suspend is true)."


def kueue_message(queue: str) -> str:
    return f"The Job waits, suspended, for Kueue to admit it to LocalQueue {queue}."


@dataclass
class FineTuneJobWorld:
    """What the handler observed for one FineTuneJob (kopf's indexes and the admission)."""

    job: dict[str, Any] | None = None
    """Its workload: the batch/v1 Job (matched by the FineTuneJob's uid), or for
    ``spec.nodes`` above 1 the TrainJob or JobSet (read by name: workload.observe)."""
    pods: list[dict[str, Any]] = field(default_factory=list)
    """Its trainer pods (of a multi-node workload: node 0's, read as trainer pods)."""
    engines: multinode.Engines | None = None
    """The multi-node engines served (discovered only for spec.nodes above 1, before start)."""
    model_versions: list[ModelVersion] = field(default_factory=list)
    """ModelVersions of the namespace, parsed."""
    reserved_versions: set[int] = field(default_factory=set)
    """Versions of this model reserved by other FineTuneJobs' Jobs that have not failed."""
    base_model_version: ModelVersion | None = None
    running_in_namespace: int = 0
    """Active Jobs of other FineTuneJobs in the namespace (not finished, not suspended)."""
    older_waiting: int = 0
    """FineTuneJobs in the namespace created before this one and still waiting for a slot."""
    namespace_spent_kg: float = 0.0
    """Emissions of the namespace's other FineTuneJobs (settings.namespace_budgets_kg)."""
    experiment_spent_kg: float = 0.0
    """Emissions of the other FineTuneJobs of its experiment label in the namespace."""
    progress: TrainingProgress | None = None
    policy: Policy | PolicyError | None = None
    """The admin policy in force (None: the documented default, no ConfigMap); checked only
    before the Job exists: a running job is not stopped by a later policy change."""
    grid: schedule.GridNow | None = None
    """The grid's intensity for the job's place, read only for a job that schedules on it."""
    kepler_energy: kepler.PodEnergy | None = None
    """Kepler's CPU/DRAM joules for the trainer pods, read once the Job finished (kepler.py)."""


def next_version(model: str, model_versions: list[ModelVersion], reserved: set[int]) -> int:
    """1 + the highest version of ``model`` that exists or another job has reserved."""
    taken = {mv.spec.version for mv in model_versions if mv.spec.model == model}
    return max(taken | reserved | {0}) + 1


def _progress_status(ftj: FineTuneJob, progress: TrainingProgress) -> dict[str, Any]:
    total = planned_total_steps(ftj.spec.hyperparameters.max_steps, progress.total_steps)
    return TrainingProgressStatus(
        step=progress.step,
        total_steps=total,
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
    """Drive one FineTuneJob: start its Job, follow it, and produce its ModelVersion once.

    A finished job is left as it is; a budget-stopped one whose budget was raised resumes;
    without a Job the admission decides whether to start one; with one, follow it.
    """
    ftj = FineTuneJob.model_validate(body)
    plan = Plan()
    st = StatusDraft(ftj, now, merged=("scheduling",))
    if ftj.spec.carbon.scheduled and not is_done(ftj):
        _set_scheduling(st, schedule.seen(ftj.status.scheduling, world.grid, now))
    if is_done(ftj):
        pass
    elif budget_raised(ftj):
        _plan_resume(plan, st, body, ftj, world, settings)
    elif world.job is None:
        _plan_start(plan, st, body, ftj, world, settings)
    else:
        _follow_job(plan, st, ftj, world, settings, world.job)
    if is_done(ftj):
        st.fields["recommendations"] = recommendations(ftj)
    plan.status = st.patch()
    return plan


def _scheduling(st: StatusDraft) -> SchedulingStatus | None:
    raw = st.fields.get("scheduling")
    return SchedulingStatus.model_validate(raw) if raw else None


def _set_scheduling(st: StatusDraft, status: SchedulingStatus) -> None:
    st.fields["scheduling"] = status.to_wire()


def _energy_kwh(st: StatusDraft) -> float:
    return float((st.fields.get("carbon") or {}).get("energyKwh") or 0.0)


def recommendations(ftj: FineTuneJob) -> list[dict[str, Any]]:
    """The carbon rules on a finished job's figures (what it could do better next time); the
    rules that need inputs the operator lacks (a forecast, utilisation) stay silent here."""
    from model_garden.carbon.recommend.engine import evaluate, status_briefs
    from model_garden.carbon.recommend.facts import job_facts

    facts = job_facts(ftj)
    return status_briefs(evaluate([facts], [])) if facts is not None else []


def _follow_job(
    plan: Plan,
    st: StatusDraft,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    settings: OperatorSettings,
    job: dict[str, Any],
) -> None:
    """The Job exists: keep its suspension in step with the spec, then read its outcome
    (succeeded, failed, suspended or queued) or, while it runs, its progress."""
    ns = ftj.metadata.namespace or "default"
    version = reserved_version(job, ftj.output_model)
    st.fields["jobName"] = job["metadata"]["name"]
    _note_ignored_spec_change(plan, ftj)
    kind = workload.kind_of(job)
    if kind != "Job":  # set at the start; a Job started before the field existed goes unnamed
        st.fields["workloadKind"] = kind
    finished = workload.finished(job)
    ref = ObjectRef(workload.KINDS[kind][0], kind, ns, job["metadata"]["name"])
    suspended = _drive_suspend(plan, ftj, job, finished, ref)
    if finished == "Complete":
        _plan_success(plan, st, ftj, world, version, job)
    elif finished == "Failed":
        diagnosis, result = diagnose_failure(ftj, job, world.pods)
        _fail(plan, st, workload.failure(job, diagnosis))
        if result is not None:
            _record_carbon(st, kepler.into_result(result, world.kepler_energy).carbon)
            if result.backend:
                st.fields["backend"] = result.backend
    elif suspended:
        if ftj.spec.queue_name and not ftj.spec.suspend:
            reason, message = "Queued", kueue_message(ftj.spec.queue_name)
        else:
            reason, message = "Suspended", SUSPENDED_MESSAGE
        if st.set_condition("Running", ConditionStatus.FALSE, reason, message):
            plan.event("Normal", reason, message)
    else:
        _plan_running(plan, st, ftj, world, settings, ref)


def _note_ignored_spec_change(plan: Plan, ftj: FineTuneJob) -> None:
    """Spec changes after the start are ignored (the run is keyed by what it trains): say so."""
    generation, observed = ftj.metadata.generation, ftj.status.observed_generation
    if ftj.status.job_name and generation and observed and generation > observed:
        plan.event(
            "Normal",
            "SpecChangeIgnored",
            "The spec changed while the job exists: only spec.suspend takes effect;"
            " create a new FineTuneJob to train with other settings.",
        )


def _drive_suspend(
    plan: Plan, ftj: FineTuneJob, job: dict[str, Any], finished: str | None, ref: ObjectRef
) -> bool:
    """Follow ``spec.suspend`` on a running Job and say whether it is suspended now. Without
    Kueue suspension is ours to drive both ways; with Kueue we only ever suspend (Kueue admits)."""
    suspended = bool((job.get("spec") or {}).get("suspend", False))
    if finished is not None or suspended == ftj.spec.suspend:
        return suspended
    if ftj.spec.queue_name and not ftj.spec.suspend:
        return suspended
    plan.patch.append((ref, {"spec": {"suspend": ftj.spec.suspend}}))
    plan.event(
        "Normal",
        "Suspended" if ftj.spec.suspend else "Resumed",
        f"{'Suspending' if ftj.spec.suspend else 'Resuming'} {ref.kind} {ref.name}"
        + (" (the trainer checkpoints on SIGTERM)." if ftj.spec.suspend else "."),
    )
    return ftj.spec.suspend


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
    """Create the config and the Job once nothing holds the job back; the Job starts suspended
    when Kueue admits it or the spec suspends it."""
    if not _may_start(plan, st, ftj, world, settings):
        return
    chosen = multinode.choose(ftj.spec.nodes, world.engines or multinode.Engines())
    if chosen.kind is None:
        multinode.refuse(plan, st, chosen)
        return
    sched = _scheduling(st)
    version = sched.paused_version if sched is not None else None
    if version is None or version in world.reserved_versions:
        version = next_version(ftj.output_model, world.model_versions, world.reserved_versions)
    if sched is not None:
        resumed = sched.paused_since is not None

        _set_scheduling(st, schedule.started(sched, world.grid, _energy_kwh(st), st.now))
        if resumed:
            plan.event("Normal", "Resumed", _resumed_message(world.grid))
    mounts = Mounts()
    config = build_training_config(ftj, version, settings, mounts, world.base_model_version)
    plan.create.append(build_config_map(body, ftj, config))
    job = multinode.render(build_job(body, ftj, version, settings, mounts), ftj, chosen.kind)
    plan.create.append(job)
    st.fields["jobName"] = job["metadata"]["name"]
    st.fields["workloadKind"] = chosen.kind
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
    nodes = f" on {ftj.spec.nodes} nodes" if ftj.spec.nodes > 1 else ""
    plan.event(
        "Normal",
        "JobCreated",
        f"Created {chosen.kind} {job['metadata']['name']} training {target}{nodes} into"
        f" {output_uri(ftj, version)}.",
        if_created=job["metadata"]["name"],
    )
    multinode.announce(plan, ftj, job)


def _may_start(
    plan: Plan,
    st: StatusDraft,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    settings: OperatorSettings,
) -> bool:
    """What holds a job back, checked in this order: the admin policy, a base ModelVersion
    that is missing or not Ready, and the namespace's cap on running jobs. Each is said in
    ``Running`` (an event when it newly applies; waiting for a base model is quiet)."""
    refusals = check_finetunejob(ftj.spec, in_force(world.policy, settings))
    if refusals:
        message = (
            f"Refused by the admin policy: {refusals_message(refusals)}. Nothing was created;"
            " change the spec (or ask an admin to change the policy): the job starts then."
        )
        if st.set_condition("Running", ConditionStatus.FALSE, "PolicyRefused", message):
            plan.event("Warning", "PolicyRefused", message)
        return False
    source = ftj.spec.base_model.model_version
    base = world.base_model_version
    if source is not None and base is None:
        message = (
            f"ModelVersion {source.name} (spec.baseModel.modelVersion) does"
            " not exist in this namespace; create it or fix the reference."
        )
        if st.set_condition("Running", ConditionStatus.FALSE, "BaseModelNotFound", message):
            plan.event("Warning", "BaseModelNotFound", message)
        return False
    if source is not None and base is not None and not observe.version_ready(base):
        message = f"Waiting for ModelVersion {source.name} to become Ready."
        st.set_condition("Running", ConditionStatus.FALSE, "BaseModelNotReady", message)
        return False
    exhausted = budget_exhausted(ftj, world, settings)
    if exhausted is not None:
        if settings.budget_action == "refuse":
            message = f"{exhausted}; refused (budgetAction: refuse). Raise the budget and recreate the job."
            st.set_condition("Failed", ConditionStatus.TRUE, "BudgetExhausted", message)
            st.stamp("completionTime")
        else:
            message = f"{exhausted}; waiting until an admin raises it (budgetAction: wait)."
        if st.set_condition("Running", ConditionStatus.FALSE, "BudgetExhausted", message):
            plan.event("Warning", "BudgetExhausted", message)
        return False
    hold = _scheduling_hold(ftj, st, world, settings)
    if hold is not None:
        if st.set_condition("Running", ConditionStatus.FALSE, hold.reason, hold.message):
            plan.event("Normal", hold.reason, hold.message)
        return False
    cap = settings.max_running_per_namespace
    if waits_for_slot(ftj, world.running_in_namespace, world.older_waiting, cap):
        message = (
            f"Waiting for a slot: {world.running_in_namespace} FineTuneJob(s) running and"
            f" {world.older_waiting} queued ahead in this namespace; the operator runs at most"
            f" {cap} at once (maxRunningPerNamespace)."
        )
        if st.set_condition("Running", ConditionStatus.FALSE, "Queued", message):
            plan.event("Normal", "Queued", message)
        return False
    return True


def _scheduling_hold(
    ftj: FineTuneJob, st: StatusDraft, world: FineTuneJobWorld, settings: OperatorSettings
) -> schedule.Hold | None:
    """What the carbon schedule says: a paused job waits for its trainer pod to go and for
    the intensity to drop; a new one for its window and the intensity (schedule.py)."""
    sched = _scheduling(st)
    if sched is None:
        return None
    if schedule.trainer_left(world.pods):
        if sched.paused_since is not None:
            return schedule.Hold(
                "Paused", "Pausing: the trainer pod is writing its checkpoint and exiting."
            )
        return schedule.Hold("Starting", "Waiting for the previous trainer pod to exit.")
    if sched.paused_since is not None:
        return schedule.resume_hold(
            ftj, sched, world.grid, st.now, settings.carbon_max_pause_seconds
        )
    return schedule.start_hold(ftj, sched, world.grid, st.now, settings.carbon_max_deferral_seconds)


def _resumed_message(grid: schedule.GridNow | None) -> str:
    seen = f" at {grid.describe()}" if grid is not None else ""
    return f"Resuming from the checkpoint{seen}: the Job is made again."


def budget_exhausted(
    ftj: FineTuneJob, world: FineTuneJobWorld, settings: OperatorSettings
) -> str | None:
    """Why the namespace's or the experiment's carbon budget holds this job back, or None.

    A job is admitted while what the others spent is below the budget (a running job's own
    ``spec.carbon.budgetKg`` bounds what it adds); once spent reaches it, new jobs wait or are
    refused, by ``settings.budget_action``."""
    ns = ftj.metadata.namespace or "default"
    experiment = ftj.metadata.labels.get(LABEL_EXPERIMENT)
    checks = [(f"namespace {ns}", settings.namespace_budgets_kg.get(ns), world.namespace_spent_kg)]
    if experiment:
        budget = settings.experiment_budgets_kg.get(experiment)
        checks.append((f"experiment {experiment}", budget, world.experiment_spent_kg))
    for what, budget, spent in checks:
        if budget is not None and spent >= budget:
            return (
                f"The carbon budget of {what} is spent: {spent:.6g} kg CO2e of {budget:.6g} kg by"
                " its other FineTuneJobs"
            )
    return None


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
        kind = workload.kind_of(world.job)
        name = world.job["metadata"]["name"]
        plan.delete.append(ObjectRef(workload.KINDS[kind][0], kind, ns, name))
        plan.delete.append(ObjectRef("v1", "ConfigMap", ns, config_map_name(ftj.metadata.name)))
        if st.set_condition("Running", ConditionStatus.FALSE, "Resuming", RESUMING_MESSAGE):
            plan.event("Normal", "BudgetRaised", RESUMING_MESSAGE)
        return
    _plan_start(plan, st, body, ftj, world, settings)
    if any(obj["kind"] in workload.KINDS for obj in plan.create):
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
    """A Job not finished nor suspended: a pod stuck for good fails it (and deletes the Job),
    one stuck for now says why; a running trainer's progress and carbon reach the status, and
    emissions over ``spec.carbon.budgetKg`` stop it; an attempt that failed on bad input
    fails it at once (and deletes the Job: a retry would fail the same way)."""
    hopeless = unretryable_attempt(world.pods, UNRETRYABLE_EXIT_CODES)
    if hopeless is not None and world.job is not None:
        diagnosis, result = diagnose_failure(ftj, world.job, [hopeless])
        _fail(plan, st, diagnosis)
        if result is not None:
            _record_carbon(st, result.carbon)
        plan.delete.append(ref)
        return
    trouble = diagnose_pending(ftj, world.job, world.pods, st.now, settings.stuck_timeout_seconds)
    if not world.pods and world.job is not None:
        trouble = workload.no_pod(world.job, st.now, settings.stuck_timeout_seconds) or trouble
    if trouble is not None and trouble.terminal:
        _fail(plan, st, trouble)
        plan.delete.append(ref)
        return
    if trouble is not None:
        if st.set_condition("Running", ConditionStatus.FALSE, trouble.reason, trouble.message):
            plan.event("Warning", trouble.reason, trouble.message)
        return
    if _pause(plan, st, ftj, world, settings, ref):
        return
    if not any(observe.is_running(p) for p in world.pods):
        st.set_condition("Running", ConditionStatus.FALSE, "Starting", STARTING_MESSAGE)
        return
    progress = world.progress
    if progress is not None:
        _record_progress(st, ftj, progress, settings)
        sched = _scheduling(st)
        if sched is not None:
            _set_scheduling(st, schedule.running(sched, progress.energy_kwh))
        over = _over_budget(ftj, progress)
        if over is not None:
            _fail(plan, st, over)
            plan.delete.append(ref)
            return
    step = f" (step {progress.step}/{progress.total_steps})" if progress else ""
    message = f"The trainer is running{step}."
    if st.set_condition("Running", ConditionStatus.TRUE, "Training", message):
        plan.event("Normal", "Running", "The trainer pod is running.")
    st.stamp("startTime")


def _pause(
    plan: Plan,
    st: StatusDraft,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    settings: OperatorSettings,
    ref: ObjectRef,
) -> bool:
    """Pause a running job while the intensity is above ``pauseAboveGridIntensity``: delete
    its Job and config (the pod's SIGTERM writes a checkpoint); _plan_start makes them again
    once the intensity drops, keeping the version."""
    sched = _scheduling(st)
    if sched is not None and sched.paused_since is not None:
        created = observe.parse_time((world.job or {}).get("metadata", {}).get("creationTimestamp"))
        if created is None or created <= sched.paused_since:
            return True  # the paused Job, on its way out
        # A Job made after the pause while this view still shows the pause: kopf's index
        # lags our writes. The start itself is planned from the stored object (reconcile's
        # _live_body), so here it is this view that is older than the resume's write; the
        # pause is closed here too.
        sched = schedule.started(sched, world.grid, _energy_kwh(st), st.now)
        _set_scheduling(st, sched)
    if sched is None or not schedule.should_pause(
        ftj, sched, world.grid, settings.carbon_max_pause_seconds
    ):
        return False
    if world.progress is not None:
        _record_progress(st, ftj, world.progress, settings)
    version = reserved_version(world.job or {}, ftj.output_model)
    _set_scheduling(st, schedule.paused(sched, _energy_kwh(st), version, st.now))
    ns = ftj.metadata.namespace or "default"
    plan.delete.append(ref)
    plan.delete.append(ObjectRef("v1", "ConfigMap", ns, config_map_name(ftj.metadata.name)))
    limit = ftj.spec.carbon.pause_above_grid_intensity
    grid = world.grid.describe() if world.grid is not None else "unknown"
    message = (
        f"Pausing at a checkpoint: the grid's intensity is {grid}, above"
        f" spec.carbon.pauseAboveGridIntensity ({limit:g}); the Job is deleted (its trainer"
        " checkpoints on SIGTERM) and made again when the intensity drops."
    )
    if st.set_condition("Running", ConditionStatus.FALSE, "Paused", message):
        plan.event("Normal", "Paused", message)
    return True


def _record_progress(
    st: StatusDraft, ftj: FineTuneJob, progress: TrainingProgress, settings: OperatorSettings
) -> None:
    """The trainer's /progress into status.progress and the running carbon figures."""
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


def _over_budget(ftj: FineTuneJob, progress: TrainingProgress) -> Diagnosis | None:
    """``CarbonBudgetExceeded`` once emissions pass ``spec.carbon.budgetKg`` (the checkpoint
    is kept, so raising the budget resumes the run)."""
    budget = ftj.spec.carbon.budget_kg
    if budget is None or progress.emissions_kg <= float(budget):
        return None
    return Diagnosis(
        "CarbonBudgetExceeded",
        f"Emissions reached {progress.emissions_kg:.4g} kg CO2e, above"
        f" spec.carbon.budgetKg ({budget}); the job was stopped (its checkpoint is"
        " kept). Raise the budget or train fewer steps.",
        True,
    )


def _plan_success(
    plan: Plan,
    st: StatusDraft,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    version: int | None,
    job: dict[str, Any],
) -> None:
    """The Job completed: read the trainer's TrainingResult, produce the ModelVersion once
    (matched by this job's uid, so a replan never makes a second), and record the outcome."""
    result = _result(plan, st, ftj, world, version, job)
    if result is None:
        return
    result = kepler.into_result(result, world.kepler_energy)
    artifact = choose_artifact(ftj, result)
    if artifact is None:
        _fail(
            plan,
            st,
            Diagnosis("NoArtifact", "The trainer succeeded but reported no artifact.", True),
        )
        return
    name = _produce_model_version(plan, ftj, world, version, result, artifact)
    st.fields["modelVersion"] = name
    _record_carbon(st, result.carbon)
    sched = _scheduling(st)
    if sched is not None:
        _set_scheduling(st, schedule.running(sched, result.carbon.energy_kwh))
    if result.backend:
        st.fields["backend"] = result.backend
    st.fields["progress"] = _final_progress(st.fields.get("progress"), result)
    st.stamp("completionTime", workload.completion_time(job))
    message = f"Training finished; produced ModelVersion {name}."
    st.set_condition("Running", ConditionStatus.FALSE, "Completed", message)
    st.set_condition("Failed", ConditionStatus.FALSE, "Completed", message)
    if st.set_condition("Succeeded", ConditionStatus.TRUE, "Completed", message):
        plan.event("Normal", "Succeeded", message)


def _result(
    plan: Plan,
    st: StatusDraft,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    version: int | None,
    job: dict[str, Any],
) -> TrainingResult | None:
    """The TrainingResult from the pod's termination message. Missing, it may not be observed
    yet: wait ``RESULT_GRACE_SECONDS`` after completion, then fail with ``ResultMissing``."""
    result = find_result(world.pods)
    if result is not None:
        return result
    completed = workload.completion_time(job)
    if completed is not None and (st.now - completed).total_seconds() < RESULT_GRACE_SECONDS:
        return None  # the pod's final status has not been observed yet
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
    return None


def _produce_model_version(
    plan: Plan,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    version: int | None,
    result: TrainingResult,
    artifact: dict[str, Any],
) -> str:
    """The name of this job's ModelVersion: the one labelled with its uid, else a new one at
    the reserved version (the next free one when another took it)."""
    model = ftj.output_model
    uid = ftj.metadata.uid
    ours = [
        mv for mv in world.model_versions if uid and mv.metadata.labels.get(LABEL_FTJ_UID) == uid
    ]
    if ours:
        return ours[0].metadata.name
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
    return name


def _final_progress(current: Any, result: TrainingResult) -> dict[str, Any]:
    """status.progress at the end: the result's steps, epochs and losses; no ETA."""
    metrics = result.metrics
    progress = dict(current or {})
    progress.update({"step": metrics.steps, "epoch": metrics.epochs})
    # A poll before the trainer had counted its data left no total (or 0): the steps done are it.
    if not progress.get("totalSteps"):
        progress["totalSteps"] = metrics.steps
    if metrics.train_loss is not None:
        progress["loss"] = round_loss(metrics.train_loss)
    if metrics.eval_loss is not None:
        progress["evalLoss"] = round_loss(metrics.eval_loss)
    progress.pop("etaSeconds", None)
    return progress
