"""Following what a FineTuneJob became: a batch/v1 Job, a Kubeflow Trainer TrainJob or a JobSet.

The planner follows all three the same way (finished? suspended? node 0's trainer pod, its
termination message); this module says what differs: where each kind says it finished, when,
which pods are node 0's, and why an engine that made no pod is stuck. :func:`observe` is the
one function here that does I/O: TrainJob and JobSet are CRDs that may be absent, so (as the
InferenceDeployment's KEDA and Gateway API objects) they are not watched but read by name at
each reconcile of a multi-node job; their node Jobs and pods carry our labels
(multinode.node_job_metadata), so kopf's watches of Jobs and pods trigger those reconciles.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from model_garden.api import FineTuneJob

from .. import observe as obs
from ..discovered import Call, get_or_none
from . import multinode
from .diagnose import Diagnosis
from .objects import job_name

KINDS = {
    "Job": ("batch/v1", "jobs", "Complete"),
    "TrainJob": (
        f"{multinode.TRAINJOB[0]}/{multinode.TRAINJOB[1]}",
        multinode.TRAINJOB[2],
        "Complete",
    ),
    "JobSet": (f"{multinode.JOBSET[0]}/{multinode.JOBSET[1]}", multinode.JOBSET[2], "Completed"),
}
"""kind -> (apiVersion, plural, the condition type saying it completed). Each fails with
condition ``Failed``; TrainJob and JobSet are suspended by ``spec.suspend`` like a Job."""
ENGINES = {"TrainJob": "Kubeflow Trainer", "JobSet": "JobSet"}
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
"""Set by JobSet on its Jobs and pods (a TrainJob runs as the JobSet of its own name)."""
JOB_INDEX_LABEL = multinode.JOB_INDEX_ANNOTATION
"""JobSet sets the job index as a label and an annotation of each pod: node 0 is index 0."""


def kind_of(obj: Mapping[str, Any] | None) -> str:
    return str((obj or {}).get("kind") or "Job")


def finished(obj: Mapping[str, Any] | None) -> str | None:
    """``Complete``, ``Failed`` or None, for a Job, TrainJob or JobSet alike."""
    if obj is None:
        return None
    if obs.condition_true(obj, KINDS[kind_of(obj)][2]):
        return "Complete"
    if obs.condition_true(obj, "Failed"):
        return "Failed"
    return None


def completion_time(obj: Mapping[str, Any]) -> datetime | None:
    """When it completed: a Job's ``status.completionTime``; a TrainJob's or JobSet's
    completion condition's ``lastTransitionTime`` (they have no such field)."""
    stamp = obs.parse_time((obj.get("status") or {}).get("completionTime"))
    if stamp is not None or kind_of(obj) == "Job":
        return stamp
    cond = obs.condition(obj, KINDS[kind_of(obj)][2]) or {}
    return obs.parse_time(cond.get("lastTransitionTime"))


def node_zero(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods of node 0: a multi-node run's result, progress and diagnosis come from the
    rank-0 node, as a one-node run's come from its only pod (whose pods carry no index:
    they are all kept)."""
    return [
        p
        for p in pods
        if ((p.get("metadata") or {}).get("labels") or {}).get(JOB_INDEX_LABEL, "0") == "0"
    ]


def as_trainer(pod: dict[str, Any]) -> dict[str, Any]:
    """A TrainJob's pod as the planner reads trainer pods: Trainer's torch runtime names the
    training container ``node``, a Job's and JobSet's pod names it ``trainer``; renaming its
    status lets the one reading of termination messages and waiting states serve all three."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not any(s.get("name") == multinode.NODE_JOB for s in statuses):
        return pod
    out = copy.deepcopy(pod)
    for status in out["status"]["containerStatuses"]:
        if status.get("name") == multinode.NODE_JOB:
            status["name"] = obs.TRAINER_CONTAINER
    return out


def trainer_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Node 0's pods, read as trainer pods."""
    return [as_trainer(p) for p in node_zero(pods)]


def failure(obj: Mapping[str, Any], diagnosis: Diagnosis) -> Diagnosis:
    """A failed TrainJob's or JobSet's diagnosis: node 0's own account when it has one (a
    failed TrainingResult, OOMKilled, a deadline), else the engine's message: node 0's bare
    exit code says less than the engine, which saw every node (another node may have failed
    and node 0 been stopped)."""
    kind = kind_of(obj)
    if kind == "Job" or diagnosis.reason not in ("TrainerError", "JobFailed"):
        return diagnosis
    cond = obs.condition(obj, "Failed") or {}
    name = (obj.get("metadata") or {}).get("name", "")
    message = cond.get("message") or f"{kind} {name} failed."
    return Diagnosis(
        str(cond.get("reason") or f"{kind}Failed"), f"{kind} {name} failed: {message}", True
    )


def no_pod(obj: Mapping[str, Any], now: datetime, stuck_after: float) -> Diagnosis | None:
    """A TrainJob or JobSet that made no node-0 pod for ``stuck_after`` s: its engine's
    controller is not running, or (a TrainJob) its runtime is missing. None for a Job (the
    one-node diagnosis covers it), a suspended one, or while it may still come."""
    kind = kind_of(obj)
    if kind == "Job" or (obj.get("spec") or {}).get("suspend"):
        return None
    created = obs.parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
    age = (now - created).total_seconds() if created is not None else None
    if age is None or age <= stuck_after:
        return None
    name = (obj.get("metadata") or {}).get("name", "")
    runtime = (
        f" and that ClusterTrainingRuntime {multinode.TRAINER_RUNTIME} exists"
        if kind == "TrainJob"
        else ""
    )
    return Diagnosis(
        "PodCreationFailed",
        f"{kind} {name} has made no node-0 pod in {age:.0f}s: check that the"
        f" {ENGINES[kind]} controller runs{runtime} (kubectl describe {kind.lower()} {name}).",
        True,
    )


def runs_on_an_engine(ftj: FineTuneJob) -> bool:
    """Whether ``ftj``'s workload is (or is to be) a TrainJob or JobSet: what its status names,
    else, before it started, ``spec.nodes`` above 1. A job started as a batch Job (named by
    ``jobName`` before ``workloadKind`` existed) stays one if its spec.nodes is edited."""
    kind = ftj.status.workload_kind or ("Job" if ftj.status.job_name else None)
    return kind in ENGINES or (kind is None and ftj.spec.nodes > 1)


def path(kind: str, namespace: str, name: str) -> str:
    api_version, plural, _ = KINDS[kind]
    return f"/apis/{api_version}/namespaces/{namespace}/{plural}/{name}"


def observe(
    ftj: FineTuneJob,
    pods: list[dict[str, Any]],
    call: Call,
    cache: multinode.EngineCache,
    ttl: float,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], multinode.Engines | None]:
    """A multi-node job's (workload, node-0 trainer pods, engines).

    The workload is read by name: the one ``status.jobName``/``workloadKind`` name, else the
    one the planner would create now (a status write the body does not show yet must not
    make a second). 404 is None: gone, or not made yet. Engines are discovered only while no
    workload exists (the planner needs them to start one).
    """
    ns = ftj.metadata.namespace or "default"
    kind: str | None = ftj.status.workload_kind
    engines = None
    if kind not in ("TrainJob", "JobSet"):
        engines = cache.current(call, ttl)
        kind = multinode.choose(ftj.spec.nodes, engines).kind
    name = ftj.status.job_name or job_name(ftj.metadata.name)
    workload = get_or_none(call, path(kind, ns, name)) if kind else None
    if workload is None and engines is None:
        engines = cache.current(call, ttl)
    return workload, trainer_pods(pods), engines
