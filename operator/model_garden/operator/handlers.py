"""kopf wiring: indexes of owners and children, and thin handlers that call the reconcilers.

Handlers declare the kwargs they use (kopf passes every index by its id). The shared
:class:`Context` is the operator-level ``memo.ctx`` (set at startup); kopf copies it into each
resource's own memo, where the reconcilers keep per-resource state. Owner indexes hold
``Owned(body, memo)``; child indexes are keyed by ``(owner kind, namespace, owner uid)``, read
from the child's uid label (or its controller reference), so a resource recreated under the
same name never sees its predecessor's children. Children's events re-reconcile their owner;
timers poll running pods and re-reconcile level-based.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.contracts import ServingCarbon
from model_garden.api.labels import (
    FINETUNEJOBS,
    GROUP,
    INFERENCEDEPLOYMENTS,
    LABEL_COMPONENT,
    LABEL_FTJ,
    LABEL_FTJ_UID,
    LABEL_IDEP,
    LABEL_IDEP_UID,
    LABEL_MV,
    LABEL_MV_UID,
    MANAGED_BY,
    MODELVERSIONS,
    OPERATOR_NAME,
    VERSION,
)

from . import observe, polling
from .finetunejob.admission import is_done
from .finetunejob.workload import node_zero
from .modelversion.plan import serves
from .reconcile import (
    Context,
    Indexes,
    Key,
    Owned,
    all_bodies,
    children,
    owners,
    reconcile_finetunejob,
    reconcile_inferencedeployment,
    reconcile_modelversion,
    reconcile_owner,
)
from .settings import OperatorSettings

__all__ = ["Context", "register"]

log = logging.getLogger(__name__)

FTJ = (GROUP, VERSION, FINETUNEJOBS)
MV = (GROUP, VERSION, MODELVERSIONS)
IDEP = (GROUP, VERSION, INFERENCEDEPLOYMENTS)
JOBS = ("batch", "v1", "jobs")
PODS = ("v1", "pods")
DEPLOYMENTS = ("apps", "v1", "deployments")
NETWORK_POLICIES = ("networking.k8s.io", "v1", "networkpolicies")
MANAGED = {MANAGED_BY: OPERATOR_NAME}
OWNER_LABELS = (
    (LABEL_FTJ, LABEL_FTJ_UID, "FineTuneJob"),
    (LABEL_IDEP, LABEL_IDEP_UID, "InferenceDeployment"),
)


def child_key(body: kopf.Body, namespace: str | None) -> Key | None:
    """The index key of a child: its owner's kind, namespace and uid."""
    labels = dict(body.get("metadata", {}).get("labels") or {})
    namespace = namespace or ""
    for name_label, uid_label, kind in OWNER_LABELS:
        if name_label in labels:
            uid = observe.owner_uid(dict(body), uid_label, kind)
            return (kind, namespace, uid) if uid else None
    if labels.get(LABEL_COMPONENT) == "verify" and LABEL_MV in labels:
        uid = observe.owner_uid(dict(body), LABEL_MV_UID, "ModelVersion")
        return ("ModelVersion", namespace, uid) if uid else None
    return None


def _done(owner: Owned) -> bool:
    """A finished (or unreadable: it is Failed with InvalidSpec) FineTuneJob."""
    ftj = owner.parsed(FineTuneJob)
    return ftj is None or is_done(ftj)


def _deleting(body: kopf.Body) -> bool:
    return bool(body.get("metadata", {}).get("deletionTimestamp"))


# --- indexes ----------------------------------------------------------------------------------


def owner_index(
    body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> dict[Any, Any]:
    return {namespace: Owned(observe.trim(dict(body)), memo)}


def child_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[Any, Any]:
    key = child_key(body, namespace)
    return {key: observe.trim(dict(body))} if key else {}


def namespace_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[Any, Any]:
    return {namespace: observe.trim(dict(body))}


def claim_index(body: kopf.Body, namespace: str | None, **_: Any) -> dict[Any, Any]:
    claim = {"metadata": {"name": body["metadata"]["name"]}, "spec": dict(body.get("spec") or {})}
    return {namespace: claim}


# --- owners -----------------------------------------------------------------------------------


def _ctx(memo: kopf.Memo) -> Context:
    ctx: Context = memo["ctx"]
    return ctx


def _forget(ctx: Context, kind: str, body: kopf.Body) -> None:
    """A deleted resource's metric series go with it (else /metrics reports it forever)."""
    meta = body.get("metadata", {})
    ctx.metrics.forget(kind, meta.get("namespace", ""), meta.get("name", ""))


def ftj_event(body: kopf.Body, type: str, memo: kopf.Memo, **kw: Any) -> None:
    ctx, idx = _ctx(memo), Indexes.of(kw)
    ctx.metrics.observe_statuses("FineTuneJob", all_bodies(idx.ftj_idx))
    if type == "DELETED":
        _forget(ctx, "FineTuneJob", body)
    elif not _deleting(body):
        reconcile_finetunejob(ctx, Owned(dict(body), memo), idx)


def mv_event(
    body: kopf.Body, type: str, namespace: str | None, name: str, memo: kopf.Memo, **kw: Any
) -> None:
    ctx, idx = _ctx(memo), Indexes.of(kw)
    ctx.metrics.observe_statuses("ModelVersion", all_bodies(idx.mv_idx))
    owner = Owned(dict(body), memo)
    if type == "DELETED":
        _forget(ctx, "ModelVersion", body)
    else:
        reconcile_modelversion(ctx, owner, idx)
    mv = owner.parsed(ModelVersion)
    model = mv.spec.model if mv is not None else None
    for entry in owners(idx.idep_idx, namespace):  # deployments that follow or name it
        idep = entry.parsed(InferenceDeployment)
        if idep is not None and (
            (model is not None and idep.spec.model == model)
            or name in (idep.spec.model_version, idep.status.model_version)
            or any(a.model_version == name for a in idep.spec.adapters)
            or any(t.model_version == name for t in idep.spec.traffic or [])
        ):
            reconcile_inferencedeployment(ctx, entry, idx)
    for entry in owners(idx.ftj_idx, namespace):  # a base model that appeared or became Ready
        ftj = entry.parsed(FineTuneJob)
        base = ftj.spec.base_model.model_version if ftj is not None else None
        if base is not None and base.name == name and not _done(entry) and not _has_job(entry, idx):
            reconcile_finetunejob(ctx, entry, idx)


def idep_event(
    body: kopf.Body, type: str, namespace: str | None, name: str, memo: kopf.Memo, **kw: Any
) -> None:
    ctx, idx = _ctx(memo), Indexes.of(kw)
    ctx.metrics.observe_statuses("InferenceDeployment", all_bodies(idx.idep_idx))
    owner = Owned(dict(body), memo)
    if type == "DELETED":
        _forget(ctx, "InferenceDeployment", body)
    elif not _deleting(body):
        reconcile_inferencedeployment(ctx, owner, idx)
    # The versions it serves (or served) keep servingDeployments, their finalizer and their
    # serving totals current: only their own reconciler writes their status.
    idep = owner.parsed(InferenceDeployment)
    if idep is None:
        return
    entries = owners(idx.mv_idx, namespace)
    versions = {entry.name: entry.parsed(ModelVersion) for entry in entries}
    parsed = [v for v in versions.values() if v is not None]
    carbon = idep.status.carbon
    attributed = {s.model_version for s in carbon.by_model_version} if carbon else set()
    for entry in entries:
        mv = versions[entry.name]
        if mv is None:
            continue
        if (
            name in mv.status.serving_deployments
            or any(s.uid == owner.uid for s in mv.status.serving_by_deployment)
            or entry.name in attributed
            or serves(idep, entry.name, parsed)
        ):
            reconcile_modelversion(ctx, entry, idx)


# --- children ---------------------------------------------------------------------------------


def _has_job(ftj: Owned, idx: Indexes) -> bool:
    key: Key = ("FineTuneJob", ftj.body["metadata"]["namespace"], ftj.uid)
    return bool(children(idx.job_idx, key)) or bool(ftj.memo.get("admitted_job"))


def _start_waiting(ctx: Context, namespace: str | None, idx: Indexes) -> None:
    """A slot in the namespace may be free: start the jobs waiting for one, oldest first."""
    waiting = [f for f in owners(idx.ftj_idx, namespace) if not _done(f) and not _has_job(f, idx)]
    for ftj in sorted(waiting, key=lambda f: str(f.body["metadata"].get("creationTimestamp"))):
        reconcile_finetunejob(ctx, ftj, idx)


def child_event(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **kw: Any) -> None:
    key = child_key(body, namespace)
    if key is not None:
        reconcile_owner(_ctx(memo), key, Indexes.of(kw))


def job_event(
    body: kopf.Body, type: str, namespace: str | None, memo: kopf.Memo, **kw: Any
) -> None:
    child_event(body, namespace, memo, **kw)
    labels = body.get("metadata", {}).get("labels") or {}
    freed = type == "DELETED" or observe.job_finished(dict(body)) is not None
    if freed and labels.get(LABEL_COMPONENT) == "trainer":
        _start_waiting(_ctx(memo), namespace, Indexes.of(kw))


# --- timers -----------------------------------------------------------------------------------


def ftj_timer(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **kw: Any) -> None:
    """Poll the running trainer's /progress, then reconcile (level-based resync)."""
    ctx, idx = _ctx(memo), Indexes.of(kw)
    s = ctx.settings
    owner = Owned(dict(body), memo)
    progress = None
    pods = children(idx.pod_idx, ("FineTuneJob", namespace or "", owner.uid))
    for pod in observe.newest_first(node_zero(pods)):  # a multi-node run: node 0 reports
        ip = observe.running_ip(pod)
        if ip is not None:
            progress = polling.fetch_progress(ip, s.progress_port, s.http_timeout_seconds)
            break
    reconcile_finetunejob(ctx, owner, idx, progress=progress)


def idep_timer(body: kopf.Body, namespace: str | None, memo: kopf.Memo, **kw: Any) -> None:
    """Read every running pod's meter; the planner adds the deltas to status.carbon."""
    ctx, idx = _ctx(memo), Indexes.of(kw)
    s = ctx.settings
    owner = Owned(dict(body), memo)
    readings: dict[str, ServingCarbon] = {}
    for pod in children(idx.pod_idx, ("InferenceDeployment", namespace or "", owner.uid)):
        ip = observe.running_ip(pod)
        if ip is None:
            continue
        reading = polling.fetch_meter(ip, s.meter_port, s.meter_path, s.http_timeout_seconds)
        if reading is not None:
            readings[pod["metadata"]["uid"]] = reading
    reconcile_inferencedeployment(ctx, owner, idx, readings=readings if readings else None)


def mv_timer(body: kopf.Body, memo: kopf.Memo, **kw: Any) -> None:
    reconcile_modelversion(_ctx(memo), Owned(dict(body), memo), Indexes.of(kw))


# --- registration -----------------------------------------------------------------------------


def register(registry: kopf.OperatorRegistry, ctx: Context) -> None:
    """Register every index and handler of the operator into ``registry``."""

    def startup(memo: kopf.Memo, **_: Any) -> None:
        memo["ctx"] = ctx

    kopf.on.startup(registry=registry)(startup)
    _register_indexes(registry)
    _register_watches(registry)
    _register_timers(registry, ctx.settings)


def _register_indexes(registry: kopf.OperatorRegistry) -> None:
    """The owners by namespace, our children by owner uid, trainer Jobs and claims by
    namespace: the reconcilers read the world from these, never from the API server."""
    owner_kinds = ((FTJ, "ftj_idx"), (MV, "mv_idx"), (IDEP, "idep_idx"))
    for kind, index_id in owner_kinds:
        kopf.index(*kind, id=index_id, registry=registry)(owner_index)
    child_kinds = (
        (JOBS, "job_idx"),
        (PODS, "pod_idx"),
        (DEPLOYMENTS, "deploy_idx"),
        (("v1", "services"), "service_idx"),
        # NetworkPolicies: observed, so a reconcile applies one only when it differs (or is gone).
        (NETWORK_POLICIES, "np_idx"),
    )
    for resource, index_id in child_kinds:
        kopf.index(*resource, labels=MANAGED, id=index_id, registry=registry)(child_index)
    kopf.index(
        "v1",
        "configmaps",
        labels={**MANAGED, LABEL_IDEP: kopf.PRESENT},
        id="cm_idx",
        registry=registry,
    )(child_index)
    kopf.index(
        *JOBS,
        labels={**MANAGED, LABEL_COMPONENT: "trainer"},
        id="trainer_job_idx",
        registry=registry,
    )(namespace_index)
    kopf.index("v1", "persistentvolumeclaims", id="pvc_idx", registry=registry)(claim_index)


def _register_watches(registry: kopf.OperatorRegistry) -> None:
    """Every watch event of an owner is a level-based reconcile (our own status writes
    converge); a child's event re-reconciles its owner."""
    kopf.on.event(*FTJ, id="ftj_event", registry=registry)(ftj_event)
    kopf.on.event(*MV, id="mv_event", registry=registry)(mv_event)
    kopf.on.event(*IDEP, id="idep_event", registry=registry)(idep_event)
    kopf.on.event(*JOBS, labels=MANAGED, id="job_event", registry=registry)(job_event)
    kopf.on.event(*PODS, labels=MANAGED, id="pod_event", registry=registry)(child_event)
    kopf.on.event(*DEPLOYMENTS, labels=MANAGED, id="deploy_event", registry=registry)(child_event)
    kopf.on.event(*NETWORK_POLICIES, labels=MANAGED, id="np_event", registry=registry)(child_event)


def _register_timers(registry: kopf.OperatorRegistry, s: OperatorSettings) -> None:
    """Poll what no watch reports (trainer progress, serving meters) and resync ModelVersions;
    a finished FineTuneJob is not polled."""
    kopf.timer(
        *FTJ,
        id="ftj_timer",
        interval=s.progress_poll_seconds,
        initial_delay=s.progress_poll_seconds,
        when=lambda body, memo, **_: not _done(Owned(dict(body), memo)),
        registry=registry,
    )(ftj_timer)
    kopf.timer(
        *IDEP,
        id="idep_timer",
        interval=s.meter_poll_seconds,
        initial_delay=s.meter_poll_seconds,
        registry=registry,
    )(idep_timer)
    kopf.timer(
        *MV,
        id="mv_timer",
        interval=s.resync_seconds,
        initial_delay=s.resync_seconds,
        registry=registry,
    )(mv_timer)
