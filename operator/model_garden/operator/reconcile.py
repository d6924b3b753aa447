"""Observe, plan, execute: one function per kind, called by the kopf handlers.

Each ``reconcile_*`` gathers the world of one resource from kopf's indexes, calls the pure
planner and hands the plan to the executor. Per-resource state lives in kopf's per-resource
``memo`` (a lock, the Job this process just created, the parsed model): the owner indexes carry
that memo next to the body, so a child's event reaches its owner's memo too, and kopf drops it
with the resource. Children are found by their owner's **uid** (index keys), never by name.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.common import ConditionStatus, utcnow
from model_garden.api.contracts import ServingCarbon, TrainingProgress
from model_garden.api.labels import API_VERSION
from model_garden.carbon.grid import Grid

from .executor import Executor, NotOurs, VersionConflict
from .finetunejob import admission, kepler, multinode, workload
from .finetunejob.plan import FineTuneJobWorld, plan_finetunejob
from .gridreading import grid_now, operator_grid
from .inferencedeployment.discovery import DiscoveryCache
from .inferencedeployment.plan import InferenceDeploymentWorld, plan_inferencedeployment
from .inferencedeployment.world import observe_platform
from .metrics import OperatorMetrics
from .modelversion.plan import ModelVersionWorld, plan_modelversion, serving_deployments
from .plan import ObjectRef, Plan
from .policy import Policy, PolicyCache, PolicyError
from .settings import OperatorSettings
from .status import Resource, StatusDraft, plan_invalid

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Key = tuple[str, str, str]  # (owner kind, namespace, owner uid)
INDEXES = (
    "ftj_idx",
    "mv_idx",
    "idep_idx",
    "job_idx",
    "trainer_job_idx",
    "pod_idx",
    "deploy_idx",
    "service_idx",
    "cm_idx",
    "np_idx",
    "pvc_idx",
)


@dataclass
class Context:
    """What every handler shares for one operator run (kopf's operator-level ``memo.ctx``)."""

    settings: OperatorSettings
    executor: Executor
    metrics: OperatorMetrics
    policy_cache: PolicyCache | None = None
    """The admin policy ConfigMap, re-read at most every few seconds (None: the default)."""
    discovery: DiscoveryCache = field(default_factory=DiscoveryCache)
    """Which autoscalers and Gateway API the cluster serves (re-discovered every
    settings.discovery_seconds)."""
    engines: multinode.EngineCache = field(default_factory=multinode.EngineCache)
    """Which multi-node training engines (TrainJob, JobSet) the cluster serves (the same TTL)."""
    _namespace_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    _grid: Grid | None = None

    def grid(self) -> Grid:
        """The process's grid (made at first use: only carbon-scheduled jobs read it)."""
        with self._guard:
            if self._grid is None:
                self._grid = operator_grid(self.settings)
            return self._grid

    def namespace_lock(self, namespace: str) -> threading.Lock:
        """Admissions of one namespace are decided one at a time (versions, the cap)."""
        with self._guard:
            return self._namespace_locks.setdefault(namespace, threading.Lock())

    def policy(self) -> Policy | PolicyError | None:
        """The admin policy in force now (a broken ConfigMap: its PolicyError, refusing all)."""
        return self.policy_cache.current() if self.policy_cache is not None else None


@dataclass(frozen=True)
class Owned:
    """An owner index entry: the resource's body and kopf's per-resource memo."""

    body: dict[str, Any]
    memo: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.body["metadata"].get("uid", ""))

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def lock(self) -> threading.Lock:
        lock: threading.Lock = self.memo.setdefault("lock", threading.Lock())
        return lock

    def parsed(self, model: type[M]) -> M | None:
        """The body as ``model``, parsed once per resourceVersion (None when it is invalid)."""
        version = self.body["metadata"].get("resourceVersion")
        cached = self.memo.get("parsed")
        if cached is not None and cached[0] == version and isinstance(cached[1], model):
            return cached[1]
        try:
            value = model.model_validate(self.body)
        except ValidationError:
            return None
        self.memo["parsed"] = (version, value)
        return value


@dataclass(frozen=True)
class Indexes:
    """kopf's indexes, as the handlers receive them (by id)."""

    ftj_idx: Mapping[Any, Any]
    mv_idx: Mapping[Any, Any]
    idep_idx: Mapping[Any, Any]
    job_idx: Mapping[Any, Any]
    trainer_job_idx: Mapping[Any, Any]
    pod_idx: Mapping[Any, Any]
    deploy_idx: Mapping[Any, Any]
    service_idx: Mapping[Any, Any]
    cm_idx: Mapping[Any, Any]
    np_idx: Mapping[Any, Any]
    pvc_idx: Mapping[Any, Any]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> Indexes:
        return cls(**{name: kwargs[name] for name in INDEXES})


def many(index: Mapping[Any, Any], key: Any) -> list[Any]:
    """A copy of an index entry; kopf updates indexes from its event loop while we read them."""
    for _attempt in range(10):
        try:
            return list(index.get(key, []))
        except RuntimeError:  # changed size during iteration: read again
            continue
    return list(index.get(key, []))


def children(index: Mapping[Any, Any], key: Any) -> list[dict[str, Any]]:
    return [dict(v) for v in many(index, key)]


def child(index: Mapping[Any, Any], key: Key) -> dict[str, Any] | None:
    values = children(index, key)
    return values[0] if values else None


def owners(index: Mapping[Any, Any], namespace: str | None) -> list[Owned]:
    return [o for o in many(index, namespace) if isinstance(o, Owned)]


def find_owner(index: Mapping[Any, Any], namespace: str, uid: str) -> Owned | None:
    return next((o for o in owners(index, namespace) if o.uid == uid), None)


def typed(entries: list[Owned], model: type[M]) -> list[M]:
    """The parsed siblings of a namespace; one that the models refuse is left out (it has its
    own InvalidSpec condition)."""
    out = []
    for entry in entries:
        value = entry.parsed(model)
        if value is not None:
            out.append(value)
    return out


def all_bodies(index: Mapping[Any, Any]) -> list[dict[str, Any]]:
    return [o.body for ns in list(index) for o in owners(index, ns)]


# --- errors and invalid specs -----------------------------------------------------------------


def _produces_a_version(plan: Plan) -> bool:
    return any(obj["kind"] == "ModelVersion" for obj in plan.create)


def _live_body(ctx: Context, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """This very FineTuneJob (same uid) as the API server has it now, or None once deleted.

    The body a reconcile gets comes from kopf's index, which lags the operator's own status
    writes: a start planned from it could undo what the last pass wrote (a carbon pause read
    as never having happened: its pause time lost, its run segment counted twice; a deferral's
    start time missing). Read once before a Job is created, so a start is planned from what
    is stored."""
    meta = body["metadata"]
    live = ctx.executor.get(ObjectRef(API_VERSION, "FineTuneJob", meta["namespace"], meta["name"]))
    if live is None or live["metadata"].get("uid") != meta.get("uid"):
        return None
    return live


def _still_exists(ctx: Context, body: Mapping[str, Any]) -> bool:
    """Whether this very FineTuneJob (same uid) is still on the server.

    kopf's indexes are fed by separate watches, so a Job's completion can be seen before its
    owner's deletion: a live read before the one irreversible write (a ModelVersion outlives
    its job) keeps a deleted job from producing a version."""
    return _live_body(ctx, body) is not None


def _run(
    ctx: Context, kind: str, body: dict[str, Any], resource: Resource | None, plan: Plan
) -> None:
    if not plan.empty:
        meta = body["metadata"]
        details = "; ".join(plan.details()) or "events"
        log.info("%s %s/%s: %s", kind, meta["namespace"], meta["name"], details)
    ctx.executor.execute(plan, body)
    _clear_conflict(ctx, body, resource, plan)


def _clear_conflict(
    ctx: Context, body: dict[str, Any], resource: Resource | None, plan: Plan
) -> None:
    """The plan applied in full: a ``Conflict`` recorded earlier is over. The draft starts from
    the status as the plan left it, so clearing keeps what the plan just wrote."""
    if resource is None or not any(
        c.type == "Conflict" and c.status == ConditionStatus.TRUE
        for c in resource.status.conditions
    ):
        return
    status = {**resource.status.to_wire(), **(plan.status or {})}
    cleared = plan_conflict({**body, "status": status}, None)
    if cleared.status:
        ctx.executor.execute_owner(cleared, body)


def plan_conflict(body: Mapping[str, Any], message: str | None) -> Plan:
    """``Conflict=True`` naming an object we do not own (None: the conflict cleared)."""
    draft = StatusDraft(body, utcnow())
    before = draft.condition("Conflict")
    if message is None:
        if before is None or before.status != ConditionStatus.TRUE:
            return Plan()
        draft.set_condition("Conflict", ConditionStatus.FALSE, "Resolved", "No conflict.")
        return Plan(status=draft.patch())
    plan = Plan()
    if draft.set_condition("Conflict", ConditionStatus.TRUE, "NotOurs", message):
        plan.event("Warning", "Conflict", message)
    plan.status = draft.patch()
    return plan


@contextmanager
def reconciling(ctx: Context, kind: str, body: dict[str, Any]) -> Iterator[None]:
    """Count a reconciliation; a spec the models refuse becomes a condition, an object in the
    way that is not ours a ``Conflict`` condition (retried every pass), other errors count."""
    ctx.metrics.reconciliations.labels(kind).inc()
    try:
        yield
    except ValidationError as exc:
        plan = plan_invalid(kind, body, exc)
        if plan.events:
            ctx.executor.execute(plan, body)
    except NotOurs as exc:
        ctx.executor.execute_owner(plan_conflict(body, exc.message), body)
    except VersionConflict as exc:
        meta = body["metadata"]
        log.info("%s %s/%s: %s; replanning next pass", kind, meta["namespace"], meta["name"], exc)
    except Exception:
        ctx.metrics.errors.labels(kind).inc()
        raise


# --- FineTuneJob ------------------------------------------------------------------------------


def reconcile_finetunejob(
    ctx: Context, owner: Owned, idx: Indexes, progress: TrainingProgress | None = None
) -> None:
    body = owner.body
    ns = body["metadata"]["namespace"]
    key: Key = ("FineTuneJob", ns, owner.uid)
    with reconciling(ctx, "FineTuneJob", body), owner.lock:
        ftj = FineTuneJob.model_validate(body)
        world = FineTuneJobWorld(
            job=child(idx.job_idx, key),
            pods=children(idx.pod_idx, key),
            model_versions=typed(owners(idx.mv_idx, ns), ModelVersion),
            progress=progress,
        )
        multi = workload.runs_on_an_engine(ftj) and not admission.is_done(ftj)
        if multi:  # a TrainJob or JobSet, read by name (its node Jobs are in job_idx too)
            world.job, world.pods, world.engines = workload.observe(
                ftj, world.pods, ctx.executor.call, ctx.engines, ctx.settings.discovery_seconds
            )
        if world.job is None and not admission.is_done(ftj):
            world.policy = ctx.policy()  # checked only before the job starts
        if ftj.spec.carbon.scheduled and not admission.is_done(ftj):
            world.grid = grid_now(ctx.grid(), ftj, ctx.settings)
        # Kepler's CPU/DRAM joules, asked once the Job finished; its query matches a one-node
        # Job's pod names, so a multi-node job keeps node 0's own figures
        if not admission.is_done(ftj) and not multi:
            world.kepler_energy = kepler.trainer_energy(ctx.settings, ftj, world.job, utcnow())
        if world.job is not None:
            owner.memo.pop("admitted_job", None)  # the index shows it now
        source = ftj.spec.base_model.model_version
        if source is not None:
            world.base_model_version = next(
                (m for m in world.model_versions if m.metadata.name == source.name), None
            )
        if world.job is not None or admission.is_done(ftj):
            owner.memo.pop("admitted_job", None)
            plan = plan_finetunejob(body, world, ctx.settings, utcnow())
            if _produces_a_version(plan) and not _still_exists(ctx, body):
                return  # deleted meanwhile: its Job's success must not mint a ModelVersion
            _run(ctx, "FineTuneJob", body, ftj, plan)
            return
        with ctx.namespace_lock(ns):
            _admit(ftj, world, idx)
            if multi:  # its own node Jobs' leftovers are not its workload
                world.job = None
            plan = plan_finetunejob(body, world, ctx.settings, utcnow())
            if plan.create:  # a start is planned from the job as the API server has it now
                live = _live_body(ctx, body)
                if live is None:
                    return  # deleted meanwhile
                if live["metadata"].get("resourceVersion") != body["metadata"].get(
                    "resourceVersion"
                ):
                    log.info("FineTuneJob %s/%s: replanning its start from the live object",
                             ns, body["metadata"]["name"])  # fmt: skip
                    body, ftj = live, FineTuneJob.model_validate(live)
                    plan = plan_finetunejob(body, world, ctx.settings, utcnow())
            ctx.executor.execute_children(plan)
            for obj in plan.create:
                if obj["kind"] in workload.KINDS and obj["metadata"]["name"] in plan.created:
                    owner.memo["admitted_job"] = obj
        ctx.executor.execute_owner(plan, body)  # status and events: outside the namespace lock
        _clear_conflict(ctx, body, ftj, plan)


def _admit(ftj: FineTuneJob, world: FineTuneJobWorld, idx: Indexes) -> None:
    """The namespace as the admission sees it: kopf's index of trainer Jobs plus the Jobs this
    process created that the index does not show yet (kept in each FineTuneJob's memo)."""
    ns = ftj.metadata.namespace or "default"
    entries = owners(idx.ftj_idx, ns)
    admitted = {e.uid: e.memo["admitted_job"] for e in entries if e.memo.get("admitted_job")}
    siblings = typed(entries, FineTuneJob)
    decision = admission.decide(ftj, siblings, children(idx.trainer_job_idx, ns), admitted)
    for entry in entries:
        if entry.uid in decision.forget:
            entry.memo.pop("admitted_job", None)
    world.job = decision.job
    world.reserved_versions = set(decision.reserved_versions)
    world.running_in_namespace = decision.running
    world.older_waiting = decision.older_waiting
    world.namespace_spent_kg = decision.namespace_spent_kg
    world.experiment_spent_kg = decision.experiment_spent_kg


# --- ModelVersion -----------------------------------------------------------------------------


def reconcile_modelversion(ctx: Context, owner: Owned, idx: Indexes) -> None:
    body = owner.body
    ns = body["metadata"]["namespace"]
    key: Key = ("ModelVersion", ns, owner.uid)
    with reconciling(ctx, "ModelVersion", body), owner.lock:
        idep_entries = owners(idx.idep_idx, ns)
        world = ModelVersionWorld(
            verify_job=child(idx.job_idx, key),
            verify_pods=children(idx.pod_idx, key),
            serving_deployments=serving_deployments(
                owner.name,
                typed(idep_entries, InferenceDeployment),
                typed(owners(idx.mv_idx, ns), ModelVersion),
            ),
            deployments=[e.body for e in idep_entries],
        )
        plan = plan_modelversion(body, world, ctx.settings, utcnow())
        _run(ctx, "ModelVersion", body, owner.parsed(ModelVersion), plan)


# --- InferenceDeployment ----------------------------------------------------------------------


def reconcile_inferencedeployment(
    ctx: Context,
    owner: Owned,
    idx: Indexes,
    readings: Mapping[str, ServingCarbon] | None = None,
) -> None:
    body = owner.body
    ns = body["metadata"]["namespace"]
    key: Key = ("InferenceDeployment", ns, owner.uid)
    with reconciling(ctx, "InferenceDeployment", body), owner.lock:
        world = InferenceDeploymentWorld(
            model_versions=typed(owners(idx.mv_idx, ns), ModelVersion),
            deployment=child(idx.deploy_idx, key),
            service=child(idx.service_idx, key),
            config_map=child(idx.cm_idx, key),
            network_policy=child(idx.np_idx, key),
            policy=ctx.policy(),
            claims={c["metadata"]["name"]: c for c in children(idx.pvc_idx, ns)},
            readings=readings,
            live_pods=[p["metadata"]["uid"] for p in children(idx.pod_idx, key)]
            if readings is not None
            else None,
            deployments=children(idx.deploy_idx, key),
            services=children(idx.service_idx, key),
            config_maps=children(idx.cm_idx, key),
        )
        observe_platform(
            world, ctx.executor.call, ctx.discovery, ctx.settings.discovery_seconds, body
        )
        plan = plan_inferencedeployment(body, world, ctx.settings, utcnow())
        _run(ctx, "InferenceDeployment", body, owner.parsed(InferenceDeployment), plan)


RECONCILERS = {
    "FineTuneJob": ("ftj_idx", reconcile_finetunejob),
    "ModelVersion": ("mv_idx", reconcile_modelversion),
    "InferenceDeployment": ("idep_idx", reconcile_inferencedeployment),
}


def reconcile_owner(ctx: Context, key: Key, idx: Indexes) -> None:
    """Re-reconcile the owner of a child that changed (found by uid; gone: nothing to do)."""
    kind, ns, uid = key
    index_name, reconcile = RECONCILERS[kind]
    owner = find_owner(getattr(idx, index_name), ns, uid)
    if owner is not None:
        reconcile(ctx, owner, idx)
