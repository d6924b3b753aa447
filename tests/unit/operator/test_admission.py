"""Admission as a pure function: (this job, the namespace's FineTuneJobs, trainer Jobs, the
records of Jobs this process created) -> which Job is its own, what runs, what is reserved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from model_garden.api import FineTuneJob
from model_garden.operator.finetunejob.admission import Admission, decide, waits_for_slot

from .factories import ftj, job, ts

CAP = 2


def _ftj(name: str, uid: str, age_s: float = 600, **spec: Any) -> FineTuneJob:
    body = ftj(name, **spec)
    body["metadata"]["uid"] = uid
    body["metadata"]["creationTimestamp"] = ts(-age_s)
    return FineTuneJob.model_validate(body)


def _done(name: str, uid: str) -> FineTuneJob:
    body = ftj(name, status={"conditions": [{"type": "Succeeded", "status": "True"}]})
    body["metadata"]["uid"] = uid
    return FineTuneJob.model_validate(body)


def _refused(name: str, uid: str) -> FineTuneJob:
    running = {"type": "Running", "status": "False", "reason": "PolicyRefused"}
    body = ftj(name, status={"conditions": [running]})
    body["metadata"]["uid"] = uid
    return FineTuneJob.model_validate(body)


def _job(owner: str, version: int = 1, **kw: Any) -> dict[str, Any]:
    return job(f"{owner}-train", version=f"chat-v{version}", owner_uid=f"uid-{owner}", **kw)


THIS = _ftj("tune", "uid-tune", age_s=60)


@dataclass
class Row:
    name: str
    ftjs: list[FineTuneJob]
    indexed: list[dict[str, Any]] = field(default_factory=list)
    admitted: dict[str, dict[str, Any]] = field(default_factory=dict)
    own_job: str | None = None
    running: int = 0
    older: int = 0
    reserved: set[int] = field(default_factory=set)
    forget: set[str] = field(default_factory=set)
    waits: bool = False


ROWS = [
    Row("alone in the namespace", [THIS]),
    Row(
        "its own Job in the index is found by uid",
        [THIS],
        indexed=[_job("tune")],
        own_job="tune-train",
    ),
    Row(
        "its own Job only in this process's record is found (the index lags)",
        [THIS],
        admitted={"uid-tune": _job("tune")},
        own_job="tune-train",
    ),
    Row(
        "a Job left by a deleted job of the same name is not adopted, but holds its slot",
        [THIS],
        indexed=[job("tune-train", version="chat-v1", owner_uid="uid-tune-before")],
        running=1,
        reserved={1},
    ),
    Row(
        "the record of a deleted FineTuneJob is forgotten and holds no slot (ghost admission)",
        [THIS],
        admitted={"uid-gone": _job("gone", 3)},
        forget={"uid-gone"},
    ),
    Row(
        "four deleted jobs' records never fill the cap",
        [THIS],
        admitted={f"uid-gone{i}": _job(f"gone{i}", i) for i in range(4)},
        forget={f"uid-gone{i}" for i in range(4)},
    ),
    Row(
        "the record of a finished FineTuneJob whose Job was deleted is forgotten",
        [THIS, _done("old", "uid-old")],
        admitted={"uid-old": _job("old")},
        forget={"uid-old"},
    ),
    Row(
        "a record the index now shows is forgotten, the Job counted once",
        [THIS, _ftj("other", "uid-other")],
        indexed=[_job("other", 2)],
        admitted={"uid-other": _job("other", 2)},
        running=1,
        reserved={2},
        forget={"uid-other"},
    ),
    Row(
        "running Jobs fill the cap",
        [THIS, _ftj("a", "uid-a"), _ftj("b", "uid-b")],
        indexed=[_job("a", 1), _job("b", 2)],
        running=2,
        reserved={1, 2},
        waits=True,
    ),
    Row(
        "finished and suspended Jobs hold no slot; a failed one reserves no version",
        [THIS, _ftj("a", "uid-a"), _ftj("b", "uid-b"), _ftj("c", "uid-c")],
        indexed=[
            _job("a", 1, finished="Complete"),
            _job("b", 2, suspend=True),
            _job("c", 3, finished="Failed"),
        ],
        reserved={1, 2},
    ),
    Row(
        "older jobs still waiting go first",
        [THIS, _ftj("a", "uid-a"), _ftj("b", "uid-b", age_s=900), _ftj("new", "uid-n", age_s=1)],
        indexed=[_job("a", 1)],
        running=1,
        older=1,
        reserved={1},
        waits=True,
    ),
    Row(
        "an older job the admin policy refused waits for a change, not a slot: it is not ahead",
        [THIS, _refused("bad", "uid-bad")],
    ),
    Row(
        "Kueue and suspended jobs do not wait for the operator's slot",
        [THIS, _ftj("q", "uid-q", queueName="gpu"), _ftj("s", "uid-s", suspend=True)],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_admission(row: Row) -> None:
    got: Admission = decide(THIS, row.ftjs, row.indexed, row.admitted)
    assert (got.job or {}).get("metadata", {}).get("name") == row.own_job
    assert (got.running, got.older_waiting) == (row.running, row.older)
    assert set(got.reserved_versions) == row.reserved
    assert set(got.forget) == row.forget
    assert waits_for_slot(THIS, got.running, got.older_waiting, CAP) is row.waits


def test_kueue_job_never_waits_for_the_operator_cap() -> None:
    queued = _ftj("tune", "uid-tune", queueName="gpu")
    assert not waits_for_slot(queued, running=10, older_waiting=3, cap=CAP)
    assert not waits_for_slot(THIS, running=10, older_waiting=3, cap=0)  # 0: no cap
