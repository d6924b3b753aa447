"""Admission: may this FineTuneJob start its Job now, and which model version does it reserve?

A pure function of what the operator knows of the namespace: the FineTuneJobs, the trainer Jobs
(kopf's index, plus the Jobs this process created and the index does not show yet) and the
namespace cap. Children are matched to their FineTuneJob by **uid**, never by name: a job
deleted and recreated under the same name is a new job, and a Job left behind by its
predecessor is neither adopted nor counted as this job's.

The handler calls :func:`decide` under a per-namespace lock, so two jobs never reserve the same
version or overrun the cap; the records of Jobs it created are dropped as soon as the index
shows them or their FineTuneJob is gone (``Admission.forget``), so a deleted job leaves nothing
behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model_garden.api import FineTuneJob
from model_garden.api.labels import LABEL_EXPERIMENT, LABEL_FTJ_UID, LABEL_MODEL, LABEL_MV

from .. import observe


@dataclass(frozen=True)
class Admission:
    """What the namespace looks like to one FineTuneJob that has no Job yet."""

    job: dict[str, Any] | None = None
    """This FineTuneJob's Job (matched by uid), if one exists after all."""
    reserved_versions: frozenset[int] = frozenset()
    """Versions of its model reserved by other Jobs that have not failed."""
    running: int = 0
    """Active trainer Jobs in the namespace (not finished, not suspended)."""
    older_waiting: int = 0
    """FineTuneJobs created before this one that still wait for a slot."""
    namespace_spent_kg: float = 0.0
    """Emissions of the namespace's other FineTuneJobs so far (for a namespace budget)."""
    experiment_spent_kg: float = 0.0
    """Emissions of the other FineTuneJobs of its experiment (label) in the namespace."""
    forget: frozenset[str] = field(default_factory=frozenset)
    """uids whose admission record is no longer needed (the index shows the Job, or the
    FineTuneJob is gone or finished)."""


def job_owner_uid(job: Mapping[str, Any]) -> str | None:
    return observe.owner_uid(job, LABEL_FTJ_UID, "FineTuneJob")


def reserved_version(job: Mapping[str, Any], model: str) -> int | None:
    """The version a Job was created for (its ``modelgarden.dev/model-version`` label)."""
    label = ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_MV, "")
    prefix = f"{model}-v"
    if label.startswith(prefix) and label[len(prefix) :].isdigit():
        return int(label[len(prefix) :])
    return None


def budget_raised(ftj: FineTuneJob) -> bool:
    """Stopped by its carbon budget, and the budget now allows more (or was removed).

    The one spec change that takes effect after the start: the job resumes from its
    checkpoint (the trainer's run key leaves ``spec.carbon`` out, so it is the same run).
    """
    failed = next(
        (c for c in ftj.status.conditions if c.type == "Failed" and c.status == "True"), None
    )
    if failed is None or failed.reason != "CarbonBudgetExceeded":
        return False
    budget = ftj.spec.carbon.budget_kg
    spent = ftj.status.carbon.emissions_kg if ftj.status.carbon is not None else 0.0
    return budget is None or float(budget) > spent


def is_done(ftj: FineTuneJob) -> bool:
    """Succeeded or failed for good (a budget-stopped job whose budget was raised is not)."""
    return any(
        c.type in ("Succeeded", "Failed") and c.status == "True" for c in ftj.status.conditions
    ) and not budget_raised(ftj)


NOT_WAITING_FOR_A_SLOT = ("PolicyRefused", "Deferred", "Paused")


def waits_for_something_else(ftj: FineTuneJob) -> bool:
    """Refused by the admin policy, or held by its carbon schedule (its last status says so):
    it waits for a spec or policy change, a time or the grid, not for a slot, so it does not
    hold younger jobs back."""
    return any(
        c.type == "Running" and c.status == "False" and c.reason in NOT_WAITING_FOR_A_SLOT
        for c in ftj.status.conditions
    )


def waits_for_slot(ftj: FineTuneJob, running: int, older_waiting: int, cap: int) -> bool:
    """Without Kueue, at most ``cap`` jobs run per namespace, the rest start in creation order."""
    return not ftj.spec.queue_name and bool(cap) and running + older_waiting >= cap


def _created(ftj: FineTuneJob) -> tuple[str, str]:
    return (str((ftj.metadata.model_extra or {}).get("creationTimestamp", "")), ftj.metadata.name)


def decide(
    ftj: FineTuneJob,
    ftjs: list[FineTuneJob],
    indexed: list[dict[str, Any]],
    admitted: Mapping[str, dict[str, Any]],
) -> Admission:
    """The admission of ``ftj`` given the namespace's FineTuneJobs and trainer Jobs.

    ``indexed``: trainer Jobs as kopf's index shows them; ``admitted``: FineTuneJob uid -> the
    Job this process created for it (the index may lag its own writes by a few events).
    """
    # A record lives only while its FineTuneJob exists and has not finished: a Job that is gone
    # by then (deleted with a finished job) must not hold a slot or a version forever.
    alive = {f.metadata.uid for f in ftjs if f.metadata.uid and not is_done(f)}
    alive.add(ftj.metadata.uid or "")
    shown = {job_owner_uid(j) for j in indexed}
    forget = frozenset(uid for uid in admitted if uid in shown or uid not in alive)
    jobs = list(indexed) + [j for uid, j in admitted.items() if uid not in forget]
    uid, model = ftj.metadata.uid, ftj.output_model
    mine = next((j for j in jobs if uid and job_owner_uid(j) == uid), None)
    if mine is not None:
        return Admission(job=mine, forget=forget)
    reserved = set()
    for job in jobs:
        labels = (job.get("metadata") or {}).get("labels") or {}
        if labels.get(LABEL_MODEL) == model and observe.job_finished(job) != "Failed":
            version = reserved_version(job, model)
            if version is not None:
                reserved.add(version)
    for other in ftjs:  # a paused job keeps its version for its resumption
        paused = other.status.scheduling
        if other.metadata.uid != uid and other.output_model == model and not is_done(other):
            if paused is not None and paused.paused_version is not None:
                reserved.add(paused.paused_version)
    with_job = {job_owner_uid(j) for j in jobs}
    older = sum(
        1
        for other in ftjs
        if other.metadata.uid != uid
        and other.metadata.uid not in with_job
        and not is_done(other)
        and not other.spec.queue_name
        and not other.spec.suspend
        and not waits_for_something_else(other)
        and _created(other) < _created(ftj)
    )
    namespace_kg, experiment_kg = spent_by_others(ftj, ftjs)
    return Admission(
        reserved_versions=frozenset(reserved),
        running=sum(1 for job in jobs if observe.job_active(job)),
        older_waiting=older,
        namespace_spent_kg=namespace_kg,
        experiment_spent_kg=experiment_kg,
        forget=forget,
    )


def spent_by_others(ftj: FineTuneJob, ftjs: list[FineTuneJob]) -> tuple[float, float]:
    """(kg CO2e of the namespace's other jobs, kg of those of the same experiment label)."""
    experiment = ftj.metadata.labels.get(LABEL_EXPERIMENT)
    namespace_kg = experiment_kg = 0.0
    for other in ftjs:
        if other.metadata.uid == ftj.metadata.uid or other.status.carbon is None:
            continue
        namespace_kg += other.status.carbon.emissions_kg
        if experiment and other.metadata.labels.get(LABEL_EXPERIMENT) == experiment:
            experiment_kg += other.status.carbon.emissions_kg
    return namespace_kg, experiment_kg
