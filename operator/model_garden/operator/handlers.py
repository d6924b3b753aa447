"""kopf wiring: indexes of children, thin event and timer handlers that observe, plan, execute.

Every handler ends in one of three ``reconcile_*`` functions: gather the world from kopf's
indexes (one live list only when a FineTuneJob's Job is about to be created, under a
per-namespace lock, so two jobs never reserve the same version or overrun the namespace cap),
call the pure planner, hand the plan to the executor. Children's events re-reconcile their
owner; timers poll running pods and re-reconcile level-based.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import kopf
from pydantic import ValidationError

from model_garden.api import FineTuneJob
from model_garden.api.common import describe_errors, utcnow
from model_garden.api.contracts import ServingCarbon, TrainingProgress

from . import finetunejob as ftj_plan
from . import inferencedeployment as idep_plan
from . import modelversion as mv_plan
from . import observe, polling
from .executor import Executor, VersionConflict
from .metrics import OperatorMetrics
from .plan import (
    LABEL_COMPONENT,
    LABEL_FTJ,
    LABEL_IDEP,
    LABEL_MODEL,
    LABEL_MV,
    MANAGED_BY,
    OPERATOR_NAME,
    Plan,
)
from .settings import OperatorSettings

log = logging.getLogger(__name__)

GROUP, VERSION = "modelgarden.dev", "v1alpha1"
FTJ = (GROUP, VERSION, "finetunejobs")
MV = (GROUP, VERSION, "modelversions")
IDEP = (GROUP, VERSION, "inferencedeployments")
MANAGED = {MANAGED_BY: OPERATOR_NAME}

Key = tuple[str, str, str]  # (owner kind, namespace, owner name)


@dataclass
class Context:
    """What the handlers share for one operator run."""

    settings: OperatorSettings
    executor: Executor
    metrics: OperatorMetrics
    _locks: dict[Any, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)
    meter_baselines: dict[tuple[str, str], dict[str, ServingCarbon]] = field(default_factory=dict)
    admitted: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """namespace -> FineTuneJob -> the Job this process created, until the index shows it."""
    latest: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(
        default_factory=lambda: {"FineTuneJob": {}, "ModelVersion": {}, "InferenceDeployment": {}}
    )

    def lock(self, key: Any) -> AbstractContextManager[bool]:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def remember(self, kind: str, body: dict[str, Any], deleted: bool = False) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if deleted:  # forget everything kept per resource
            self.latest[kind].pop(key, None)
            if kind == "InferenceDeployment":
                self.meter_baselines.pop(key, None)
            with self._guard:
                self._locks.pop((kind, *key), None)
        else:
            self.latest[kind][key] = body
        self.metrics.observe_statuses(kind, list(self.latest[kind].values()))


def _owner_key(labels: dict[str, str], namespace: str) -> Key | None:
    for label, kind in ((LABEL_FTJ, "FineTuneJob"), (LABEL_IDEP, "InferenceDeployment")):
        if label in labels:
            return (kind, namespace, labels[label])
    if labels.get(LABEL_COMPONENT) == "verify" and LABEL_MV in labels:
        return ("ModelVersion", namespace, labels[LABEL_MV])
    return None


def _many(index: Any, key: Any) -> list[dict[str, Any]]:
    """A copy of the index entry; kopf updates indexes from its event loop while we read them."""
    for _attempt in range(10):
        try:
            return [dict(v) for v in index.get(key, [])]
        except RuntimeError:  # changed size during iteration: read again
            continue
    return [dict(v) for v in list(index.get(key, []))]


def _one(index: Any, key: Any) -> dict[str, Any] | None:
    values = _many(index, key)
    return values[0] if values else None


def _done(body: dict[str, Any]) -> bool:
    return any(
        c.get("type") in ("Succeeded", "Failed") and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions") or []
    )


# --- reconcilers ------------------------------------------------------------------------------


def _run(ctx: Context, kind: str, body: dict[str, Any], plan: Plan) -> None:
    if not plan.empty:
        log.info(
            "%s %s/%s: %s",
            kind,
            body["metadata"]["namespace"],
            body["metadata"]["name"],
            "; ".join(plan.details()) or "events",
        )
    ctx.executor.execute(plan, body)


def _invalid(ctx: Context, kind: str, body: dict[str, Any], exc: ValidationError) -> None:
    """A spec the models refuse (the CRD's CEL rules would have): say so in a condition."""
    message = "; ".join(describe_errors(exc)[:3])
    cond_type = "Failed" if kind == "FineTuneJob" else "Ready"
    status = "True" if kind == "FineTuneJob" else "False"
    conditions = [
        c for c in (body.get("status") or {}).get("conditions") or [] if c.get("type") != cond_type
    ]
    conditions.append(
        {
            "type": cond_type,
            "status": status,
            "reason": "InvalidSpec",
            "message": f"The spec is invalid: {message}",
            "lastTransitionTime": utcnow().isoformat().replace("+00:00", "Z"),
        }
    )
    plan = Plan(status={"conditions": conditions})
    if (body.get("status") or {}).get("conditions") != conditions:
        plan.event("Warning", "InvalidSpec", f"The spec is invalid: {message}")
        ctx.executor.execute(plan, body)


@contextmanager
def _reconciling(ctx: Context, kind: str, body: dict[str, Any]) -> Iterator[None]:
    """Count a reconciliation; a spec the models refuse becomes a condition, other errors count."""
    ctx.metrics.reconciliations.labels(kind).inc()
    try:
        yield
    except ValidationError as exc:
        _invalid(ctx, kind, body, exc)
    except VersionConflict as exc:
        meta = body["metadata"]
        log.info(
            "%s %s/%s: %s; replanning on the next pass", kind, meta["namespace"], meta["name"], exc
        )
    except Exception:
        ctx.metrics.errors.labels(kind).inc()
        raise


def reconcile_finetunejob(
    ctx: Context,
    body: dict[str, Any],
    idx: dict[str, Any],
    progress: TrainingProgress | None = None,
) -> None:
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    key: Key = ("FineTuneJob", ns, name)
    with _reconciling(ctx, "FineTuneJob", body), ctx.lock(key):
        ftj = FineTuneJob.model_validate(body)
        world = ftj_plan.FineTuneJobWorld(
            job=_one(idx["job_idx"], key),
            pods=_many(idx["pod_idx"], key),
            model_versions=_many(idx["mv_idx"], ns),
            progress=progress,
        )
        source = ftj.spec.base_model.model_version
        if source is not None:
            world.base_model_version = next(
                (m for m in world.model_versions if m["metadata"]["name"] == source.name), None
            )
        if world.job is None and not _done(body):
            with ctx.lock(("admission", ns)):
                _observe_admission(ctx, ftj, world, idx)
                plan = ftj_plan.plan_finetunejob(body, world, ctx.settings, utcnow())
                ctx.executor.execute_children(plan)
                for obj in plan.create:
                    if obj["kind"] == "Job":
                        ctx.admitted.setdefault(ns, {})[name] = obj
            ctx.executor.execute_owner(plan, body)  # status and events: outside the lock
            return
        plan = ftj_plan.plan_finetunejob(body, world, ctx.settings, utcnow())
        _run(ctx, "FineTuneJob", body, plan)


def _observe_admission(
    ctx: Context, ftj: FineTuneJob, world: ftj_plan.FineTuneJobWorld, idx: dict[str, Any]
) -> None:
    """The namespace's trainer Jobs: from the index, plus those this process just created.

    kopf fills every index before any handler runs (so a restarted operator sees every Job), but
    an index may lag this process's own writes by a few events: the Jobs created here are
    remembered until the index shows them. Called under the namespace lock, so two jobs never
    reserve the same version or overrun the namespace cap.
    """
    ns, name, model = ftj.metadata.namespace or "default", ftj.metadata.name, ftj.output_model
    indexed = {
        (j["metadata"].get("labels") or {}).get(LABEL_FTJ, ""): j
        for j in _many(idx["trainer_job_idx"], ns)
    }
    mine = ctx.admitted.setdefault(ns, {})
    for owner in [o for o in mine if o in indexed]:
        del mine[owner]
    jobs = {**indexed, **mine}
    if name in jobs:
        world.job = jobs[name]
        return
    for job in jobs.values():
        labels = job["metadata"].get("labels") or {}
        if labels.get(LABEL_MODEL) == model and observe.job_finished(job) != "Failed":
            version = ftj_plan.reserved_version(job, model)
            if version is not None:
                world.reserved_versions.add(version)
    world.running_in_namespace = sum(1 for job in jobs.values() if observe.job_active(job))
    created = (ftj.metadata.model_extra or {}).get("creationTimestamp", "")
    older = 0
    for other in _many(idx["ftj_idx"], ns):
        ometa = other["metadata"]
        if ometa["name"] == name or ometa["name"] in jobs or _done(other):
            continue
        spec = other.get("spec") or {}
        if spec.get("queueName") or spec.get("suspend"):
            continue
        if (str(ometa.get("creationTimestamp", "")), ometa["name"]) < (str(created), name):
            older += 1
    world.older_waiting = older


def reconcile_modelversion(ctx: Context, body: dict[str, Any], idx: dict[str, Any]) -> None:
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    key: Key = ("ModelVersion", ns, name)
    with _reconciling(ctx, "ModelVersion", body), ctx.lock(key):
        world = mv_plan.ModelVersionWorld(
            verify_job=_one(idx["job_idx"], key),
            verify_pods=_many(idx["pod_idx"], key),
            serving_deployments=sorted(
                d["metadata"]["name"] for d in _many(idx["idep_idx"], ns) if mv_plan.serves(d, name)
            ),
        )
        plan = mv_plan.plan_modelversion(body, world, ctx.settings, utcnow())
        _run(ctx, "ModelVersion", body, plan)


def reconcile_inferencedeployment(
    ctx: Context, body: dict[str, Any], idx: dict[str, Any], carbon: dict[str, Any] | None = None
) -> None:
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    key: Key = ("InferenceDeployment", ns, name)
    with _reconciling(ctx, "InferenceDeployment", body), ctx.lock(key):
        world = idep_plan.InferenceDeploymentWorld(
            model_versions=_many(idx["mv_idx"], ns),
            deployment=_one(idx["deploy_idx"], key),
            service=_one(idx["service_idx"], key),
            config_map=_one(idx["cm_idx"], key),
            claims={c["metadata"]["name"]: c for c in _many(idx["pvc_idx"], ns)},
            carbon=carbon,
        )
        plan = idep_plan.plan_inferencedeployment(body, world, ctx.settings, utcnow())
        _run(ctx, "InferenceDeployment", body, plan)


def _owners(idx: dict[str, Any], name: str, namespace: str) -> Iterable[dict[str, Any]]:
    return _many(idx[name], namespace)


def _reconcile_owner(ctx: Context, key: Key, idx: dict[str, Any]) -> None:
    kind, ns, name = key
    index = {"FineTuneJob": "ftj_idx", "ModelVersion": "mv_idx", "InferenceDeployment": "idep_idx"}
    owner = next((o for o in _owners(idx, index[kind], ns) if o["metadata"]["name"] == name), None)
    if owner is None:
        return
    if kind == "FineTuneJob":
        reconcile_finetunejob(ctx, owner, idx)
    elif kind == "ModelVersion":
        reconcile_modelversion(ctx, owner, idx)
    else:
        reconcile_inferencedeployment(ctx, owner, idx)


# --- registration -----------------------------------------------------------------------------


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    """Register every index and handler of the operator into ``registry``."""
    s = ctx.settings

    @kopf.index(*FTJ, id="ftj_idx", registry=registry)
    def ftj_idx(**kw: Any) -> dict[Any, Any]:
        return {kw["namespace"]: observe.trim(dict(kw["body"]))}

    @kopf.index(*MV, id="mv_idx", registry=registry)
    def mv_idx(**kw: Any) -> dict[Any, Any]:
        return {kw["namespace"]: observe.trim(dict(kw["body"]))}

    @kopf.index(*IDEP, id="idep_idx", registry=registry)
    def idep_idx(**kw: Any) -> dict[Any, Any]:
        return {kw["namespace"]: observe.trim(dict(kw["body"]))}

    def child_index(body: Any, namespace: str, labels: Any) -> dict[Any, Any]:
        key = _owner_key(dict(labels), namespace)
        return {key: observe.trim(dict(body))} if key else {}

    @kopf.index("batch", "v1", "jobs", labels=MANAGED, id="job_idx", registry=registry)
    def job_idx(**kw: Any) -> dict[Any, Any]:
        return child_index(kw["body"], kw["namespace"], kw["labels"])

    @kopf.index(
        "batch",
        "v1",
        "jobs",
        labels={**MANAGED, LABEL_COMPONENT: "trainer"},
        id="trainer_job_idx",
        registry=registry,
    )
    def trainer_job_idx(**kw: Any) -> dict[Any, Any]:
        return {kw["namespace"]: observe.trim(dict(kw["body"]))}

    @kopf.index("v1", "pods", labels=MANAGED, id="pod_idx", registry=registry)
    def pod_idx(**kw: Any) -> dict[Any, Any]:
        return child_index(kw["body"], kw["namespace"], kw["labels"])

    @kopf.index("apps", "v1", "deployments", labels=MANAGED, id="deploy_idx", registry=registry)
    def deploy_idx(**kw: Any) -> dict[Any, Any]:
        return child_index(kw["body"], kw["namespace"], kw["labels"])

    @kopf.index("v1", "services", labels=MANAGED, id="service_idx", registry=registry)
    def service_idx(**kw: Any) -> dict[Any, Any]:
        return child_index(kw["body"], kw["namespace"], kw["labels"])

    @kopf.index(
        "v1",
        "configmaps",
        labels={**MANAGED, LABEL_IDEP: kopf.PRESENT},
        id="cm_idx",
        registry=registry,
    )
    def cm_idx(**kw: Any) -> dict[Any, Any]:
        return child_index(kw["body"], kw["namespace"], kw["labels"])

    @kopf.index("v1", "persistentvolumeclaims", id="pvc_idx", registry=registry)
    def pvc_idx(**kw: Any) -> dict[Any, Any]:
        body = kw["body"]
        claim = {
            "metadata": {"name": body["metadata"]["name"]},
            "spec": dict(body.get("spec") or {}),
        }
        return {kw["namespace"]: claim}

    # Owners: every watch event is a level-based reconcile (our own status writes converge).
    @kopf.on.event(*FTJ, registry=registry)
    def ftj_event(**idx: Any) -> None:
        body, type = idx["body"], idx["type"]
        ctx.remember("FineTuneJob", dict(body), deleted=type == "DELETED")
        if type != "DELETED" and not body.get("metadata", {}).get("deletionTimestamp"):
            reconcile_finetunejob(ctx, dict(body), idx)

    @kopf.on.event(*MV, registry=registry)
    def mv_event(**idx: Any) -> None:
        body, type, namespace, name = idx["body"], idx["type"], idx["namespace"], idx["name"]
        ctx.remember("ModelVersion", dict(body), deleted=type == "DELETED")
        if type != "DELETED":
            reconcile_modelversion(ctx, dict(body), idx)
        model = (body.get("spec") or {}).get("model")
        for idep in _owners(idx, "idep_idx", namespace):
            spec = idep.get("spec") or {}
            if (
                spec.get("model") == model
                or spec.get("modelVersion") == name
                or (idep.get("status") or {}).get("modelVersion") == name
                or any(a.get("modelVersion") == name for a in spec.get("adapters") or [])
            ):
                reconcile_inferencedeployment(ctx, idep, idx)
        if type in ("ADDED", "DELETED"):  # a new version may unblock a waiting job
            for ftj in _owners(idx, "ftj_idx", namespace):
                base = ((ftj.get("spec") or {}).get("baseModel") or {}).get("modelVersion") or {}
                if base.get("name") == name and not _done(ftj):
                    reconcile_finetunejob(ctx, ftj, idx)

    @kopf.on.event(*IDEP, registry=registry)
    def idep_event(**idx: Any) -> None:
        body, type, namespace, name = idx["body"], idx["type"], idx["namespace"], idx["name"]
        ctx.remember("InferenceDeployment", dict(body), deleted=type == "DELETED")
        if type != "DELETED" and not body.get("metadata", {}).get("deletionTimestamp"):
            reconcile_inferencedeployment(ctx, dict(body), idx)
        # The versions it serves (or served) keep their servingDeployments and finalizer current.
        for mv in _owners(idx, "mv_idx", namespace):
            listed = name in ((mv.get("status") or {}).get("servingDeployments") or [])
            if listed or mv_plan.serves(dict(body), mv["metadata"]["name"]):
                reconcile_modelversion(ctx, mv, idx)

    # Children: re-reconcile the owner.
    def on_child(body: Any, namespace: str, labels: Any, idx: dict[str, Any]) -> None:
        key = _owner_key(dict(labels), namespace)
        if key is not None:
            _reconcile_owner(ctx, key, idx)

    @kopf.on.event("batch", "v1", "jobs", labels=MANAGED, registry=registry)
    def job_event(**kw: Any) -> None:
        on_child(kw["body"], kw["namespace"], kw["labels"], kw)
        body, labels = dict(kw["body"]), dict(kw["labels"])
        freed = kw["type"] == "DELETED" or observe.job_finished(body) is not None
        if freed and labels.get(LABEL_COMPONENT) == "trainer":
            # A slot in the namespace may be free: start the jobs waiting for one, oldest first.
            waiting = [
                f
                for f in _owners(kw, "ftj_idx", kw["namespace"])
                if not _done(f) and not (f.get("status") or {}).get("jobName")
            ]
            for ftj in sorted(waiting, key=lambda f: str(f["metadata"].get("creationTimestamp"))):
                reconcile_finetunejob(ctx, ftj, kw)

    @kopf.on.event("v1", "pods", labels=MANAGED, registry=registry)
    def pod_event(**kw: Any) -> None:
        on_child(kw["body"], kw["namespace"], kw["labels"], kw)

    @kopf.on.event("apps", "v1", "deployments", labels=MANAGED, registry=registry)
    def deploy_event(**kw: Any) -> None:
        on_child(kw["body"], kw["namespace"], kw["labels"], kw)

    # Timers: poll running pods and re-reconcile (level-based resync).
    @kopf.timer(
        *FTJ,
        interval=s.progress_poll_seconds,
        initial_delay=s.progress_poll_seconds,
        when=lambda body, **_: not _done(dict(body)),
        registry=registry,
    )
    def ftj_timer(**idx: Any) -> None:
        body, namespace, name = idx["body"], idx["namespace"], idx["name"]
        progress = None
        for pod in observe.newest_first(_many(idx["pod_idx"], ("FineTuneJob", namespace, name))):
            status = pod.get("status") or {}
            if status.get("phase") == "Running" and status.get("podIP"):
                progress = polling.fetch_progress(
                    status["podIP"], s.progress_port, s.http_timeout_seconds
                )
                break
        reconcile_finetunejob(ctx, dict(body), idx, progress=progress)

    @kopf.timer(
        *IDEP, interval=s.meter_poll_seconds, initial_delay=s.meter_poll_seconds, registry=registry
    )
    def idep_timer(**idx: Any) -> None:
        body, namespace, name = idx["body"], idx["namespace"], idx["name"]
        readings: dict[str, ServingCarbon] = {}
        for pod in _many(idx["pod_idx"], ("InferenceDeployment", namespace, name)):
            status = pod.get("status") or {}
            if status.get("phase") == "Running" and status.get("podIP"):
                reading = polling.fetch_meter(
                    status["podIP"], s.meter_port, s.meter_path, s.http_timeout_seconds
                )
                if reading is not None:
                    readings[pod["metadata"]["uid"]] = reading
        key = (namespace, name)
        current = (body.get("status") or {}).get("carbon")
        carbon, baselines, delta = polling.accumulate(
            dict(current) if current else None, ctx.meter_baselines.get(key, {}), readings
        )
        ctx.meter_baselines[key] = baselines
        served = (body.get("status") or {}).get("modelVersion")
        if served and (delta.energy_kwh or delta.emissions_kg):
            _add_serving_totals(ctx, idx, namespace, served, delta)
        reconcile_inferencedeployment(ctx, dict(body), idx, carbon=carbon if readings else None)

    @kopf.timer(*MV, interval=s.resync_seconds, initial_delay=s.resync_seconds, registry=registry)
    def mv_timer(**idx: Any) -> None:
        reconcile_modelversion(ctx, dict(idx["body"]), idx)


def _add_serving_totals(
    ctx: Context, idx: dict[str, Any], namespace: str, mv_name: str, delta: polling.Delta
) -> None:
    mv = next(
        (m for m in _owners(idx, "mv_idx", namespace) if m["metadata"]["name"] == mv_name), None
    )
    if mv is None:
        return
    status = mv.get("status") or {}
    energy = float(status.get("servingEnergyKwh") or 0.0) + delta.energy_kwh
    emissions = float(status.get("servingEmissionsKg") or 0.0) + delta.emissions_kg
    training = float(status.get("trainingEmissionsKg") or 0.0)
    with ctx.lock(("ModelVersion", namespace, mv_name)):
        ctx.executor.execute(
            Plan(
                status={
                    "servingEnergyKwh": energy,
                    "servingEmissionsKg": emissions,
                    "lifetimeEmissionsKg": training + emissions,
                }
            ),
            mv,
        )
