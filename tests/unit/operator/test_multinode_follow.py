"""The planner follows a multi-node FineTuneJob through its TrainJob or JobSet: created for the
engine served (else refused), its conditions x node 0's trainer pod -> the FineTuneJob's
conditions and its one ModelVersion, exactly as a one-node Job's. Objects are the ones the
planner itself renders (validated against the vendored CRDs), given the status an engine
would write."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from crd_schemas.multinode import validate
from model_garden.operator.finetunejob import multinode, workload
from model_garden.operator.finetunejob.multinode import EngineCache, Engines
from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob

from .factories import NOW, SETTINGS, conditions, ftj, pod, result, ts

TJ, JS = Engines(trainjob=True), Engines(jobset=True)
ENGINES = {"TrainJob": TJ, "JobSet": JS}


def body(nodes: int = 2, **status: Any) -> dict[str, Any]:
    return ftj(nodes=nodes, status=status or None)


def started(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the FineTuneJob as after its start, the workload the planner created for it)."""
    plan = plan_finetunejob(body(), FineTuneJobWorld(engines=ENGINES[kind]), SETTINGS, NOW)
    (obj,) = [o for o in plan.create if o["kind"] == kind]
    assert plan.status is not None
    return body(**plan.status), obj


def engine_status(
    obj: dict[str, Any],
    condition: str | None = None,
    *,
    message: str = "",
    reason: str = "",
    at_s: float = -5,
    age_s: float = 120,
) -> dict[str, Any]:
    """The workload as its engine left it: created ``age_s`` ago, with ``condition`` True."""
    out = copy.deepcopy(obj)
    out["metadata"]["creationTimestamp"] = ts(-age_s)
    conds = []
    if condition:
        conds.append(
            {
                "type": condition,
                "status": "True",
                "reason": reason or condition,
                "message": message,
                "lastTransitionTime": ts(at_s),
            }
        )
    out["status"] = {"conditions": conds}
    return out


def node_pod(kind: str, index: int, **kw: Any) -> dict[str, Any]:
    """A pod of node ``index`` as JobSet labels it; a TrainJob's container is named ``node``."""
    p = pod(**kw)
    p["metadata"]["name"] = f"tune-train-node-{index}-0-x"
    p["metadata"]["creationTimestamp"] = ts(-10 + index)  # node 1's pod is the newest
    p["metadata"]["labels"] = {
        workload.JOBSET_NAME_LABEL: "tune-train",
        workload.JOB_INDEX_LABEL: str(index),
    }
    if kind == "TrainJob":
        for status in p["status"]["containerStatuses"]:
            status["name"] = "node"
    return p


def follow(
    kind: str, state: dict[str, Any], pods: list[dict[str, Any]]
) -> tuple[Any, dict[str, Any]]:
    ftj_body, _ = started(kind)
    world = FineTuneJobWorld(job=state, pods=workload.trainer_pods(pods))
    plan = plan_finetunejob(ftj_body, world, SETTINGS, NOW)
    return plan, plan.status or {}


@pytest.mark.parametrize("kind", ["TrainJob", "JobSet"])
def test_start_creates_the_served_engines_workload_owned_and_labelled(kind: str) -> None:
    plan = plan_finetunejob(body(), FineTuneJobWorld(engines=ENGINES[kind]), SETTINGS, NOW)
    assert [o["kind"] for o in plan.create] == ["ConfigMap", kind]
    obj = plan.create[1]
    validate(obj)
    (owner,) = obj["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("FineTuneJob", "uid-tune", True)
    assert obj["metadata"]["labels"]["modelgarden.dev/fine-tune-job-uid"] == "uid-tune"
    assert (plan.status or {})["jobName"] == "tune-train"
    assert (plan.status or {})["workloadKind"] == kind
    assert conditions(plan.status)["Running"] == ("False", "Starting")
    (created,) = [e for e in plan.events if e.reason == "JobCreated"]
    assert f"Created {kind} tune-train" in created.message and "on 2 nodes" in created.message


def test_trainjob_is_preferred_and_without_an_engine_the_job_is_refused() -> None:
    both = plan_finetunejob(body(), FineTuneJobWorld(engines=Engines(True, True)), SETTINGS, NOW)
    assert [o["kind"] for o in both.create] == ["ConfigMap", "TrainJob"]
    for found in (Engines(), None):
        plan = plan_finetunejob(body(), FineTuneJobWorld(engines=found), SETTINGS, NOW)
        assert plan.create == []
        assert conditions(plan.status)["Failed"] == ("True", multinode.UNAVAILABLE)
        failed = next(c for c in (plan.status or {})["conditions"] if c["type"] == "Failed")
        assert "TrainJob" in failed["message"] and "JobSet" in failed["message"]


def test_node_jobs_and_pods_carry_our_labels_but_not_the_queue() -> None:
    for kind in ("TrainJob", "JobSet"):
        plan = plan_finetunejob(
            ftj(nodes=2, queueName="team-q"), FineTuneJobWorld(engines=ENGINES[kind]), SETTINGS, NOW
        )
        obj = plan.create[1]
        if kind == "TrainJob":
            (patch,) = obj["spec"]["runtimePatches"]
            (rj,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
        else:
            (rj,) = obj["spec"]["replicatedJobs"]
        labels = rj["template"]["metadata"]["labels"]
        assert labels["modelgarden.dev/fine-tune-job-uid"] == "uid-tune"
        assert labels["modelgarden.dev/model-version"] == "chat-v1"
        assert "kueue.x-k8s.io/queue-name" not in labels
        assert obj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-q"


RESULT = result().to_termination_message()
OTHER_RESULT = result(
    metrics={"trainLoss": 0.5, "steps": 7, "epochs": 1.0}
).to_termination_message()
FAILED_RESULT = result(
    outcome="Failed", reason="DatasetError", message="line 3: no text"
).to_termination_message()

# (name, engine condition, its message, node-0 pod, node-1 pod) -> (Running, Succeeded, Failed
# as (status, reason); the ModelVersion created, if any)
CASES = [
    (
        "complete with node 0's result: Succeeded, one ModelVersion",
        "done",
        "",
        {"phase": "Succeeded", "exit_code": 0, "message": RESULT},
        {"phase": "Succeeded", "exit_code": 0, "message": ""},
        {"Succeeded": ("True", "Completed"), "Failed": ("False", "Completed")},
        "chat-v1",
    ),
    (
        "node 1's result is not read: only node 0 reports",
        "done",
        "",
        {"phase": "Succeeded", "exit_code": 0, "message": RESULT},
        {"phase": "Succeeded", "exit_code": 0, "message": OTHER_RESULT},
        {"Succeeded": ("True", "Completed")},
        "chat-v1",
    ),
    (
        "complete, node 0's message not seen yet: wait (grace)",
        "done",
        "",
        {"phase": "Running"},
        None,
        {},
        None,
    ),
    (
        "failed by the engine: its reason and message",
        "Failed",
        "jobset failed due to job tune-train-node-1 failing",
        {"phase": "Failed", "exit_code": 143, "reason": "Error"},
        None,
        {"Failed": ("True", "Failed"), "Succeeded": ("False", "Failed")},
        None,
    ),
    (
        "failed with node 0's failed TrainingResult: the trainer's reason",
        "Failed",
        "BackoffLimitExceeded",
        {"phase": "Failed", "exit_code": 3, "message": FAILED_RESULT},
        None,
        {"Failed": ("True", "DatasetError")},
        None,
    ),
    (
        "failed with node 0 OOMKilled",
        "Failed",
        "",
        {"phase": "Failed", "exit_code": 137, "reason": "OOMKilled"},
        None,
        {"Failed": ("True", "OOMKilled")},
        None,
    ),
    (
        "running node 0: Running",
        None,
        "",
        {"phase": "Running"},
        {"phase": "Running"},
        {"Running": ("True", "Training")},
        None,
    ),
    (
        "no node-0 pod long after creation: the engine is not running",
        None,
        "",
        None,
        None,
        {"Failed": ("True", "PodCreationFailed")},
        None,
    ),
]


@pytest.mark.parametrize("kind", ["TrainJob", "JobSet"])
@pytest.mark.parametrize(
    ("name", "cond", "message", "node0", "node1", "want", "version"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_follow_table(
    kind: str,
    name: str,
    cond: str | None,
    message: str,
    node0: dict[str, Any] | None,
    node1: dict[str, Any] | None,
    want: dict[str, tuple[str, str]],
    version: str | None,
) -> None:
    _, obj = started(kind)
    condition = workload.KINDS[kind][2] if cond == "done" else cond
    # completed 5 s ago: a result not seen yet is still within the grace period
    state = engine_status(obj, condition, message=message, at_s=-5, age_s=900)
    pods = [node_pod(kind, i, **p) for i, p in ((0, node0), (1, node1)) if p is not None]
    plan, status = follow(kind, state, pods)
    got = conditions(status)
    for type_, expected in want.items():
        assert got[type_] == expected, (type_, got)
    if not want:  # nothing decided yet
        assert all(got.get(t, ("False",))[0] == "False" for t in ("Succeeded", "Failed")), got
    made = [o["metadata"]["name"] for o in plan.create if o["kind"] == "ModelVersion"]
    assert made == ([version] if version else [])
    if version:
        assert status["modelVersion"] == version
        assert status["completionTime"] == ts(-5)  # the completion condition's time
        assert status["progress"]["step"] == 100
    if cond == "Failed" and "jobset failed" in message:
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert failed["message"] == f"{kind} tune-train failed: {message}"
    if want.get("Failed", ("",))[0] == "True" and node0 is None:
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert kind in failed["message"] and "controller" in failed["message"]
        assert [r.kind for r in plan.delete] == [kind]  # a stuck workload is removed


@pytest.mark.parametrize("kind", ["TrainJob", "JobSet"])
def test_result_missing_after_the_grace_period_fails(kind: str) -> None:
    _, obj = started(kind)
    state = engine_status(obj, workload.KINDS[kind][2], at_s=-600)
    _, status = follow(kind, state, [node_pod(kind, 0, phase="Succeeded", exit_code=0)])
    assert conditions(status)["Failed"] == ("True", "ResultMissing")


@pytest.mark.parametrize("kind", ["TrainJob", "JobSet"])
def test_suspension_follows_the_spec_on_the_workload(kind: str) -> None:
    ftj_body, obj = started(kind)
    ftj_body["spec"]["suspend"] = True
    state = engine_status(obj)
    plan = plan_finetunejob(ftj_body, FineTuneJobWorld(job=state, pods=[]), SETTINGS, NOW)
    ((ref, patch),) = plan.patch
    assert (ref.kind, ref.name, ref.api_version) == (kind, "tune-train", workload.KINDS[kind][0])
    assert patch == {"spec": {"suspend": True}}
    assert conditions(plan.status)["Running"] == ("False", "Suspended")


def test_finished_reads_each_kinds_own_condition() -> None:
    def obj(kind: str, cond: str) -> dict[str, Any]:
        return {"kind": kind, "status": {"conditions": [{"type": cond, "status": "True"}]}}

    assert workload.finished(obj("TrainJob", "Complete")) == "Complete"
    assert workload.finished(obj("JobSet", "Completed")) == "Complete"
    assert workload.finished(obj("JobSet", "Complete")) is None  # not JobSet's word
    assert workload.finished(obj("Job", "Complete")) == "Complete"
    assert workload.finished(obj("TrainJob", "Failed")) == "Failed"
    assert workload.finished(obj("TrainJob", "Suspended")) is None


def test_node_zero_keeps_one_node_pods_and_renames_the_trainjob_container() -> None:
    single = pod(phase="Running")
    assert workload.node_zero([single]) == [single]
    pods = [node_pod("TrainJob", 1, phase="Running"), node_pod("TrainJob", 0, phase="Running")]
    (zero,) = workload.trainer_pods(pods)
    assert zero["metadata"]["labels"][workload.JOB_INDEX_LABEL] == "0"
    assert [s["name"] for s in zero["status"]["containerStatuses"]] == ["trainer"]
    assert pods[1]["status"]["containerStatuses"][0]["name"] == "node"  # input untouched


class FakeApi:
    """Stands in for the API server's GET answers (envtest runs the real one:
    tests/envtest/test_multinode_envtest.py); records the paths asked."""

    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.asked: list[str] = []

    def __call__(self, method: str, path: str, *_: Any, **__: Any) -> Any:
        self.asked.append(path)
        if path in self.objects:
            return self.objects[path]
        raise ApiException(status=404)


DISCOVERY = {
    "/apis": {
        "groups": [
            {"name": "trainer.kubeflow.org", "versions": [{"version": "v1alpha1"}]},
            {"name": "jobset.x-k8s.io", "versions": [{"version": "v1alpha2"}]},
        ]
    },
    "/apis/trainer.kubeflow.org/v1alpha1": {"resources": [{"name": "trainjobs"}]},
    "/apis/jobset.x-k8s.io/v1alpha2": {"resources": [{"name": "jobsets"}]},
}
TJ_PATH = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/team/trainjobs/tune-train"
JS_PATH = "/apis/jobset.x-k8s.io/v1alpha2/namespaces/team/jobsets/tune-train"


def test_observe_reads_the_named_workload_without_discovery() -> None:
    from model_garden.api import FineTuneJob

    model = FineTuneJob.model_validate(body(jobName="tune-train", workloadKind="JobSet"))
    api = FakeApi({JS_PATH: {"kind": "JobSet", "metadata": {"name": "tune-train"}}})
    got, pods, engines = workload.observe(model, [], api, EngineCache(), 60)
    assert got is not None and got["kind"] == "JobSet"
    assert (pods, engines) == ([], None)
    assert api.asked == [JS_PATH]


def test_observe_before_start_discovers_and_looks_for_the_one_it_would_make() -> None:
    from model_garden.api import FineTuneJob

    model = FineTuneJob.model_validate(body())
    api = FakeApi(dict(DISCOVERY))
    got, _, engines = workload.observe(model, [], api, EngineCache(), 60)
    assert got is None and engines == Engines(True, True)
    assert api.asked[-1] == TJ_PATH  # TrainJob preferred: a status not seen yet makes no second
    # gone (404) though the status names it: engines come back, so the planner can remake it
    named = FineTuneJob.model_validate(body(jobName="tune-train", workloadKind="TrainJob"))
    got, _, engines = workload.observe(named, [], FakeApi(dict(DISCOVERY)), EngineCache(), 60)
    assert got is None and engines == Engines(True, True)


def test_engine_cache_keeps_its_answer_when_discovery_fails() -> None:
    clock = [0.0]
    cache = EngineCache(clock=lambda: clock[0])
    api = FakeApi(dict(DISCOVERY))
    assert cache.current(api, 60) == Engines(True, True)
    clock[0] = 30
    cache.current(api, 60)
    assert api.asked.count("/apis") == 1  # within the TTL: not asked again
    clock[0] = 90
    broken = FakeApi({})
    assert cache.current(broken, 60) == Engines(True, True)
    assert broken.asked == ["/apis"]
    with pytest.raises(ApiException):
        EngineCache().current(FakeApi({}), 60)


def test_a_job_started_on_one_node_stays_a_job_when_spec_nodes_is_edited() -> None:
    from model_garden.api import FineTuneJob

    def runs(**status: Any) -> bool:
        return workload.runs_on_an_engine(FineTuneJob.model_validate(body(**status)))

    assert runs()  # nodes 2, not started
    assert runs(jobName="tune-train", workloadKind="JobSet")
    assert not runs(jobName="tune-train", workloadKind="Job")
    assert not runs(jobName="tune-train")  # started before workloadKind existed: a Job
    assert not workload.runs_on_an_engine(FineTuneJob.model_validate(ftj()))


def test_the_executor_writes_every_workload_kind() -> None:
    """The executor creates, patches and deletes TrainJobs and JobSets by its kind -> plural
    table; a kind missing there fails the first write of a multi-node job."""
    from model_garden.operator.executor import PLURALS

    for kind, (api_version, plural, _) in workload.KINDS.items():
        assert PLURALS.get((api_version, kind)) == plural, kind
