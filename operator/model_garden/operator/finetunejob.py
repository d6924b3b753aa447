"""FineTuneJob: build its ConfigMap and batch/v1 Job, and plan from what the Job and pods did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from model_garden.api import FineTuneJob, version_name
from model_garden.api.common import CarbonReport, ConditionStatus, set_condition
from model_garden.api.contracts import (
    HF_TOKEN_ENV,
    Identity,
    TrainingConfig,
    TrainingProgress,
    TrainingResult,
    TrainingRuntime,
)
from model_garden.api.finetunejob import TrainingProgressStatus

from . import observe
from .plan import (
    LABEL_COMPONENT,
    LABEL_EXPERIMENT,
    LABEL_FTJ,
    LABEL_FTJ_UID,
    LABEL_KUEUE_QUEUE,
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
from .podspec import (
    CACHE_ENV,
    compute,
    container_security_context,
    pod_security_context,
    scheduling,
    scratch_volumes,
)
from .settings import TRAINER_SIGTERM_GRACE_SECONDS, OperatorSettings
from .storage import Location, Mounts, join_uri, resolve

CONFIG_DIR = "/etc/model-garden"
CONFIG_KEY = "training-config.json"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
RESULT_GRACE_SECONDS = 60
"""How long a completed Job may wait for its pod's termination message to be observed."""
STARTING_MESSAGE = "Job created; waiting for the trainer pod to start."
SUSPENDED_MESSAGE = "The job is suspended (spec.suspend is true)."


def kueue_message(queue: str) -> str:
    return f"The Job waits, suspended, for Kueue to admit it to LocalQueue {queue}."


def job_name(ftj_name: str) -> str:
    return child_name(ftj_name, "train")


def config_map_name(ftj_name: str) -> str:
    return child_name(ftj_name, "train-config")


@dataclass
class FineTuneJobWorld:
    """What the handler observed for one FineTuneJob (from kopf indexes and, once, a live list)."""

    job: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    model_versions: list[dict[str, Any]] = field(default_factory=list)
    """ModelVersions of the namespace (bodies)."""
    reserved_versions: set[int] = field(default_factory=set)
    """Versions of this model reserved by other FineTuneJobs' Jobs that have not failed."""
    base_model_version: dict[str, Any] | None = None
    running_in_namespace: int = 0
    """Active Jobs of other FineTuneJobs in the namespace (not finished, not suspended)."""
    older_waiting: int = 0
    """FineTuneJobs in the namespace created before this one and still waiting for a slot."""
    progress: TrainingProgress | None = None


# --- builders -------------------------------------------------------------------------------


def _labels(ftj: FineTuneJob) -> dict[str, str]:
    labels = {
        MANAGED_BY: OPERATOR_NAME,
        LABEL_FTJ: ftj.metadata.name,
        LABEL_MODEL: ftj.output_model,
        LABEL_COMPONENT: "trainer",
    }
    if ftj.metadata.uid:
        labels[LABEL_FTJ_UID] = ftj.metadata.uid
    if LABEL_EXPERIMENT in ftj.metadata.labels:
        labels[LABEL_EXPERIMENT] = ftj.metadata.labels[LABEL_EXPERIMENT]
    return labels


def output_uri(ftj: FineTuneJob, version: int) -> str:
    ns = ftj.metadata.namespace or "default"
    return join_uri(ftj.spec.output.storage, ns, ftj.output_model, f"v{version}")


def checkpoint_uri(ftj: FineTuneJob) -> str:
    ns = ftj.metadata.namespace or "default"
    return join_uri(ftj.spec.output.storage, ns, "jobs", ftj.metadata.name, "checkpoints")


def base_model_location(
    ftj: FineTuneJob, base_mv: dict[str, Any] | None
) -> tuple[Location, str | None]:
    """Where the base model is: a hub id (+ revision), a URI, or a ModelVersion's artifact."""
    source = ftj.spec.base_model
    if source.hub is not None:
        return Location(source.hub.id), source.hub.revision
    if source.uri is not None:
        return resolve(source.uri), None
    assert base_mv is not None, "planner checks the ModelVersion exists first"
    return resolve(base_mv["spec"]["artifact"]["uri"]), None


def build_training_config(
    ftj: FineTuneJob,
    version: int,
    settings: OperatorSettings,
    mounts: Mounts,
    base_mv: dict[str, Any] | None = None,
) -> TrainingConfig:
    """The TrainingConfig the trainer reads; registers the claims it needs in ``mounts``."""
    base, revision = base_model_location(ftj, base_mv)
    out_uri = output_uri(ftj, version)
    carbon = ftj.spec.carbon
    return TrainingConfig(
        job=Identity(
            name=ftj.metadata.name,
            namespace=ftj.metadata.namespace or "default",
            uid=ftj.metadata.uid,
        ),
        spec=ftj.spec,
        runtime=TrainingRuntime(
            base_model=mounts.add(base),
            base_model_revision=revision,
            dataset_path=mounts.add(resolve(ftj.spec.dataset.uri)),
            output_dir=mounts.add(resolve(out_uri), writable=True),
            checkpoint_dir=mounts.add(resolve(checkpoint_uri(ftj)), writable=True),
            artifact_uri=out_uri,
            progress_port=settings.progress_port,
            termination_message_path=TERMINATION_MESSAGE_PATH,
            country=carbon.country or settings.default_country,
            region=carbon.region or settings.default_region,
            hf_token_env=HF_TOKEN_ENV,
        ),
        model_version=version,
    )


def build_config_map(
    body: dict[str, Any], ftj: FineTuneJob, config: TrainingConfig
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_meta(body, config_map_name(ftj.metadata.name), _labels(ftj)),
        "data": {CONFIG_KEY: config.model_dump_json(by_alias=True, exclude_none=True, indent=2)},
    }


def build_job(
    body: dict[str, Any],
    ftj: FineTuneJob,
    version: int,
    settings: OperatorSettings,
    mounts: Mounts,
) -> dict[str, Any]:
    """The batch/v1 Job running ``python -m model_garden.training --config <mounted file>``."""
    spec = ftj.spec
    labels = _labels(ftj)
    labels[LABEL_MV] = version_name(ftj.output_model, version)
    job_labels = dict(labels)
    if spec.queue_name:
        job_labels[LABEL_KUEUE_QUEUE] = spec.queue_name
    scratch, scratch_mounts = scratch_volumes()
    env: list[dict[str, Any]] = list(CACHE_ENV)
    hub = spec.base_model.hub
    if hub is not None and hub.token_secret is not None:
        env.append(
            {
                "name": HF_TOKEN_ENV,
                "valueFrom": {
                    "secretKeyRef": {"name": hub.token_secret.name, "key": hub.token_secret.key}
                },
            }
        )
    container: dict[str, Any] = {
        "name": observe.TRAINER_CONTAINER,
        "image": spec.image or settings.trainer_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "model_garden.training"],
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "env": env,
        "ports": [{"name": "progress", "containerPort": settings.progress_port}],
        "resources": compute(spec.resources, settings.trainer_cpu, settings.trainer_memory),
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
        + mounts.volume_mounts()
        + scratch_mounts,
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TRAINER_SIGTERM_GRACE_SECONDS + 30,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": config_map_name(ftj.metadata.name)}}]
        + mounts.volumes()
        + scratch,
        **scheduling(spec.resources),
    }
    if settings.trainer_service_account:
        pod_spec["serviceAccountName"] = settings.trainer_service_account
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "suspend": bool(spec.queue_name) or spec.suspend,
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if spec.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_meta(body, job_name(ftj.metadata.name), job_labels),
        "spec": job_spec,
    }


def _decimal(value: float) -> str:
    text = format(value, ".6g")
    return text if not text.startswith("-") else "0"


def choose_artifact(ftj: FineTuneJob, result: TrainingResult) -> dict[str, Any] | None:
    """The ModelVersion artifact: merged (or full) when the job produced one, else the adapter."""
    by_kind = {a.kind: a for a in result.artifacts}
    chosen = by_kind.get("merged") if ftj.spec.output.merge else None  # type: ignore[call-overload]
    chosen = chosen or by_kind.get("full") or by_kind.get("adapter") or by_kind.get("merged")  # type: ignore[call-overload]
    if chosen is None:
        return None
    artifact: dict[str, Any] = {
        "uri": chosen.uri or chosen.path,
        "format": "adapter" if chosen.kind == "adapter" else "merged",
        "digest": chosen.digest,
        "sizeBytes": chosen.size_bytes,
    }
    if chosen.kind == "adapter":
        source = ftj.spec.base_model
        artifact["baseModel"] = (
            source.hub.id if source.hub else source.uri if source.uri else source.model_version.name  # type: ignore[union-attr]
        )
    return artifact


def build_model_version(
    ftj: FineTuneJob, name: str, version: int, result: TrainingResult, artifact: dict[str, Any]
) -> dict[str, Any]:
    """The ModelVersion a successful job produces (no ownerReference: it outlives the job)."""
    labels = {
        LABEL_MODEL: ftj.output_model,
        LABEL_FTJ: ftj.metadata.name,
        MANAGED_BY: OPERATOR_NAME,
    }
    if ftj.metadata.uid:
        labels[LABEL_FTJ_UID] = ftj.metadata.uid
    if LABEL_EXPERIMENT in ftj.metadata.labels:
        labels[LABEL_EXPERIMENT] = ftj.metadata.labels[LABEL_EXPERIMENT]
    metrics = {
        key: _decimal(value)
        for key, value in result.metrics.model_dump(by_alias=True).items()
        if isinstance(value, (int, float)) and value is not None and value >= 0
    }
    return {
        "apiVersion": "modelgarden.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": ftj.metadata.namespace, "labels": labels},
        "spec": {
            "model": ftj.output_model,
            "version": version,
            "artifact": artifact,
            "source": {"fineTuneJob": ftj.metadata.name, "fineTuneJobUid": ftj.metadata.uid},
            "metrics": metrics,
            "trainingCarbon": {
                "energyKwh": _decimal(result.carbon.energy_kwh),
                "emissionsKg": _decimal(result.carbon.emissions_kg),
                "method": result.carbon.method,
            },
            "stage": "none",
        },
    }


# --- diagnosis ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Diagnosis:
    """Why a job is where it is: a CamelCase reason and a sentence a user can act on."""

    reason: str
    message: str
    terminal: bool = False


def diagnose_failure(
    ftj: FineTuneJob, job: dict[str, Any], pods: list[dict[str, Any]]
) -> tuple[Diagnosis, TrainingResult | None]:
    """Why a failed Job failed, from its condition, the pods' exit states and the trainer's result."""
    cond = observe.condition(job, "Failed") or {}
    if cond.get("reason") == "DeadlineExceeded":
        return Diagnosis(
            "DeadlineExceeded",
            f"The job ran longer than spec.activeDeadlineSeconds ({ftj.spec.active_deadline_seconds}s)"
            " and was stopped; raise the deadline or lower hyperparameters.maxSteps/epochs."
            " Checkpoints are kept, so a new job resumes from the last one.",
            True,
        ), None
    for pod in observe.newest_first(pods):
        term = observe.terminated(pod, observe.TRAINER_CONTAINER)
        if not term:
            continue
        result = observe.parse_result(term.get("message"))
        if term.get("reason") == "OOMKilled":
            memory = ftj.spec.resources.memory or "the default"
            return Diagnosis(
                "OOMKilled",
                f"The trainer ran out of memory (limit {memory}) and was killed; raise"
                " spec.resources.memory, or lower hyperparameters.batchSize or"
                " dataset.maxSeqLength, or use method qlora.",
                True,
            ), result
        if result is not None and result.outcome == "Failed":
            reason = result.reason or "TrainingFailed"
            return Diagnosis(
                reason, result.message or f"The trainer failed ({reason}).", True
            ), result
        code = term.get("exitCode")
        tail = (term.get("message") or "").strip()[-300:]
        return Diagnosis(
            "TrainerError",
            f"The trainer exited with code {code} after {ftj.spec.backoff_limit + 1} attempt(s)"
            + (f": {tail}" if tail else "; see the pod's logs."),
            True,
        ), result
    message = cond.get("message") or "The Job failed."
    return Diagnosis(str(cond.get("reason") or "JobFailed"), message, True), None


def diagnose_pending(
    ftj: FineTuneJob, pods: list[dict[str, Any]], now: datetime, stuck_after: float
) -> Diagnosis | None:
    """Unschedulable or image-pull trouble of the newest pod; terminal once stuck too long."""
    if not pods:
        return None
    pod = observe.newest_first(pods)[0]
    created = observe.parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    stuck = created is not None and (now - created).total_seconds() > stuck_after
    waiting = observe.waiting(pod, observe.TRAINER_CONTAINER) or {}
    if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
        image = ftj.spec.image or "the trainer image"
        return Diagnosis(
            "ImagePullFailed",
            f"Cannot pull {image}: {waiting.get('message') or waiting.get('reason')}. Check"
            " spec.image, the registry's reachability and imagePullSecrets.",
            stuck or waiting.get("reason") == "InvalidImageName",
        )
    scheduled = observe.condition(pod, "PodScheduled") or {}
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        res = ftj.spec.resources
        asked = f"{res.gpus} nvidia.com/gpu" if res.gpus else "the CPU and memory requested"
        selector = f" matching nodeSelector {res.node_selector}" if res.node_selector else ""
        return Diagnosis(
            "Unschedulable",
            f"No node{selector} can run the trainer with {asked}:"
            f" {scheduled.get('message') or 'no fitting node'}. Lower spec.resources, fix"
            " spec.resources.nodeSelector/tolerations, or add capacity.",
            stuck,
        )
    return None


# --- planning -------------------------------------------------------------------------------


def next_version(model: str, model_versions: list[dict[str, Any]], reserved: set[int]) -> int:
    """1 + the highest version of ``model`` that exists or another job has reserved."""
    taken = {mv["spec"]["version"] for mv in model_versions if mv["spec"].get("model") == model}
    return max(taken | reserved | {0}) + 1


def reserved_version(job: dict[str, Any], model: str) -> int | None:
    """The version a Job was created for (its ``modelgarden.dev/model-version`` label)."""
    label = ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_MV, "")
    prefix = f"{model}-v"
    if label.startswith(prefix) and label[len(prefix) :].isdigit():
        return int(label[len(prefix) :])
    return None


def find_result(pods: list[dict[str, Any]]) -> TrainingResult | None:
    """The TrainingResult of the newest pod whose trainer exited 0 with a result."""
    for pod in observe.newest_first(pods):
        term = observe.terminated(pod, observe.TRAINER_CONTAINER)
        if term and term.get("exitCode") == 0:
            result = observe.parse_result(term.get("message"))
            if result is not None:
                return result
    return None


def _progress_status(progress: TrainingProgress) -> dict[str, Any]:
    return TrainingProgressStatus(
        step=progress.step,
        total_steps=progress.total_steps,
        epoch=progress.epoch,
        loss=progress.loss,
        eval_loss=progress.eval_loss,
        learning_rate=progress.learning_rate,
        tokens_per_second=progress.tokens_per_second,
        eta_seconds=progress.eta_seconds,
    ).to_wire()


class _Status:
    """The status being planned: the current one with conditions updated as we go."""

    def __init__(self, ftj: FineTuneJob, now: datetime) -> None:
        self.current = ftj.status.to_wire()
        self.fields: dict[str, Any] = dict(self.current)
        self.conditions = list(ftj.status.conditions)
        self.generation = ftj.metadata.generation
        self.now = now
        self.fields["observedGeneration"] = self.generation

    def set(self, type: str, status: ConditionStatus, reason: str, message: str) -> bool:
        """Set a condition; True when its status or reason changed (worth an event)."""
        before = next((c for c in self.conditions if c.type == type), None)
        self.conditions = set_condition(
            self.conditions, type, status, reason, message, self.generation, self.now
        )
        return before is None or before.status != status or before.reason != reason

    def patch(self) -> dict[str, Any] | None:
        self.fields["conditions"] = [c.to_wire() for c in self.conditions]
        return status_patch(self.current, self.fields)


def plan_finetunejob(
    body: dict[str, Any],
    world: FineTuneJobWorld,
    settings: OperatorSettings,
    now: datetime,
) -> Plan:
    """Drive one FineTuneJob: start its Job, follow it, and produce its ModelVersion once."""
    ftj = FineTuneJob.model_validate(body)
    plan = Plan()
    st = _Status(ftj, now)
    conds = ftj.status.conditions
    done = any(c.type in ("Succeeded", "Failed") and c.status == "True" for c in conds)
    model = ftj.output_model
    ns = ftj.metadata.namespace or "default"

    if done:
        plan.status = st.patch()
        return plan

    job = world.job
    if job is None:
        _plan_start(plan, st, body, ftj, world, settings)
        plan.status = st.patch()
        return plan

    version = reserved_version(job, model)
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
        _plan_success(plan, st, ftj, world, version, job, now)
    elif finished == "Failed":
        diagnosis, result = diagnose_failure(ftj, job, world.pods)
        _fail(plan, st, diagnosis)
        if result is not None:
            st.fields["carbon"] = result.carbon.to_wire()
            if result.backend:
                st.fields["backend"] = result.backend
    elif job_suspended:
        if ftj.spec.queue_name and not ftj.spec.suspend:
            reason, message = "Queued", kueue_message(ftj.spec.queue_name)
        else:
            reason, message = "Suspended", SUSPENDED_MESSAGE
        if st.set("Running", ConditionStatus.FALSE, reason, message):
            plan.event("Normal", reason, message)
    else:
        _plan_running(plan, st, ftj, world, settings, ref, now)

    plan.status = st.patch()
    return plan


def _fail(plan: Plan, st: _Status, diagnosis: Diagnosis) -> None:
    st.set("Running", ConditionStatus.FALSE, diagnosis.reason, diagnosis.message)
    st.set("Succeeded", ConditionStatus.FALSE, diagnosis.reason, diagnosis.message)
    if st.set("Failed", ConditionStatus.TRUE, diagnosis.reason, diagnosis.message):
        plan.event("Warning", diagnosis.reason, diagnosis.message)
    st.fields["completionTime"] = st.fields.get("completionTime") or st.now.isoformat().replace(
        "+00:00", "Z"
    )


def _plan_start(
    plan: Plan,
    st: _Status,
    body: dict[str, Any],
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    settings: OperatorSettings,
) -> None:
    source = ftj.spec.base_model
    if source.model_version is not None:
        mv = world.base_model_version
        if mv is None:
            message = (
                f"ModelVersion {source.model_version.name} (spec.baseModel.modelVersion) does"
                " not exist in this namespace; create it or fix the reference."
            )
            if st.set("Running", ConditionStatus.FALSE, "BaseModelNotFound", message):
                plan.event("Warning", "BaseModelNotFound", message)
            return
        ready = observe.condition_true(mv, "Ready")
        if not ready:
            message = f"Waiting for ModelVersion {source.model_version.name} to become Ready."
            st.set("Running", ConditionStatus.FALSE, "BaseModelNotReady", message)
            return
    cap = settings.max_running_per_namespace
    if not ftj.spec.queue_name and cap and world.running_in_namespace + world.older_waiting >= cap:
        message = (
            f"Waiting for a slot: {world.running_in_namespace} FineTuneJob(s) running and"
            f" {world.older_waiting} queued ahead in this namespace; the operator runs at most"
            f" {cap} at once (maxRunningPerNamespace)."
        )
        if st.set("Running", ConditionStatus.FALSE, "Queued", message):
            plan.event("Normal", "Queued", message)
        return
    version = next_version(ftj.output_model, world.model_versions, world.reserved_versions)
    mounts = Mounts()
    config = build_training_config(ftj, version, settings, mounts, world.base_model_version)
    plan.create.append(build_config_map(body, ftj, config))
    job = build_job(body, ftj, version, settings, mounts)
    plan.create.append(job)
    st.fields["jobName"] = job["metadata"]["name"]
    target = version_name(ftj.output_model, version)
    if ftj.spec.queue_name:
        reason, message = "Queued", kueue_message(ftj.spec.queue_name)
    elif ftj.spec.suspend:
        reason, message = "Suspended", SUSPENDED_MESSAGE
    else:
        reason, message = "Starting", STARTING_MESSAGE
    st.set("Running", ConditionStatus.FALSE, reason, message)
    plan.event(
        "Normal",
        "JobCreated",
        f"Created Job {job['metadata']['name']} training {target} into {output_uri(ftj, version)}.",
        if_created=job["metadata"]["name"],
    )


def _plan_running(
    plan: Plan,
    st: _Status,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    settings: OperatorSettings,
    ref: ObjectRef,
    now: datetime,
) -> None:
    trouble = diagnose_pending(ftj, world.pods, now, settings.stuck_timeout_seconds)
    if trouble is not None and trouble.terminal:
        _fail(plan, st, trouble)
        plan.delete.append(ref)
        return
    if trouble is not None:
        if st.set("Running", ConditionStatus.FALSE, trouble.reason, trouble.message):
            plan.event("Warning", trouble.reason, trouble.message)
        return
    running = any((p.get("status") or {}).get("phase") == "Running" for p in world.pods)
    if not running:
        st.set("Running", ConditionStatus.FALSE, "Starting", STARTING_MESSAGE)
        return
    progress = world.progress
    if progress is not None:
        st.fields["progress"] = _progress_status(progress)
        carbon = CarbonReport.model_validate(st.fields.get("carbon") or {})
        st.fields["carbon"] = carbon.model_copy(
            update={
                "energy_kwh": progress.energy_kwh,
                "emissions_kg": progress.emissions_kg,
                "method": progress.carbon_method,
                "country": ftj.spec.carbon.country or settings.default_country,
                "region": ftj.spec.carbon.region or settings.default_region,
            }
        ).to_wire()
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
    if st.set("Running", ConditionStatus.TRUE, "Training", f"The trainer is running{step}."):
        plan.event("Normal", "Running", "The trainer pod is running.")
    if not st.fields.get("startTime"):
        st.fields["startTime"] = now.isoformat().replace("+00:00", "Z")


def _plan_success(
    plan: Plan,
    st: _Status,
    ftj: FineTuneJob,
    world: FineTuneJobWorld,
    version: int | None,
    job: dict[str, Any],
    now: datetime,
) -> None:
    result = find_result(world.pods)
    if result is None:
        completed = observe.parse_time((job.get("status") or {}).get("completionTime"))
        if completed is not None and (now - completed).total_seconds() < RESULT_GRACE_SECONDS:
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
    ours = [
        mv
        for mv in world.model_versions
        if ftj.metadata.uid
        and (mv["metadata"].get("labels") or {}).get(LABEL_FTJ_UID) == ftj.metadata.uid
    ]
    if ours:
        name = ours[0]["metadata"]["name"]
    else:
        taken = {
            mv["spec"]["version"] for mv in world.model_versions if mv["spec"].get("model") == model
        }
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
    st.fields["carbon"] = result.carbon.to_wire()
    if result.backend:
        st.fields["backend"] = result.backend
    metrics = result.metrics
    progress = dict(st.fields.get("progress") or {})
    progress.update({"step": metrics.steps, "epoch": metrics.epochs})
    progress.setdefault("totalSteps", metrics.steps)
    if metrics.train_loss is not None:
        progress["loss"] = metrics.train_loss
    if metrics.eval_loss is not None:
        progress["evalLoss"] = metrics.eval_loss
    progress.pop("etaSeconds", None)
    st.fields["progress"] = progress
    st.fields["completionTime"] = (job.get("status") or {}).get(
        "completionTime"
    ) or now.isoformat().replace("+00:00", "Z")
    message = f"Training finished; produced ModelVersion {name}."
    st.set("Running", ConditionStatus.FALSE, "Completed", message)
    st.set("Failed", ConditionStatus.FALSE, "Completed", message)
    if st.set("Succeeded", ConditionStatus.TRUE, "Completed", message):
        plan.event("Normal", "Succeeded", message)
