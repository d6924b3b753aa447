"""Multi-process training on the operator side: the trainer's command, which workload a
FineTuneJob becomes (Job, TrainJob, JobSet, or refused), and the rendered TrainJob/JobSet
validated against the vendored CRD schemas (tests/crd_schemas: Kubeflow Trainer v2.3.0,
JobSet v0.12.0)."""

from __future__ import annotations

import copy
from itertools import product
from typing import Any

import jsonschema
import pytest
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from crd_schemas.multinode import validate
from model_garden.api import FineTuneJob
from model_garden.operator.finetunejob import multinode
from model_garden.operator.finetunejob.multinode import (
    JOBSET,
    TRAINJOB,
    UNAVAILABLE,
    Engines,
    choose,
    discover,
    engines,
    render,
    trainer_command,
)
from model_garden.operator.finetunejob.objects import build_job, build_training_config
from model_garden.operator.plan import Plan
from model_garden.operator.status import StatusDraft
from model_garden.operator.storage import Mounts

from .factories import NOW, SETTINGS, ftj

CONFIG = ["--config", "/etc/model-garden/training-config.json"]


def finetunejob(gpus: int, nodes: int, method: str = "lora", **spec: Any) -> dict[str, Any]:
    body = ftj(**spec)
    body["spec"]["resources"]["gpus"] = gpus
    body["spec"]["nodes"] = nodes
    body["spec"]["method"] = {"type": method}
    return body


def rendered(body: dict[str, Any], found: Engines) -> tuple[multinode.Workload, dict[str, Any]]:
    """What the planner hook does: the one-node Job, then the workload for the engines."""
    model = FineTuneJob.model_validate(body)
    mounts = Mounts()
    build_training_config(model, 1, SETTINGS, mounts)
    job = build_job(body, model, 1, SETTINGS, mounts)
    workload = choose(model.spec.nodes, found)
    return workload, render(job, model, workload.kind) if workload.kind else {}


NONE, TJ, JS, BOTH = Engines(), Engines(trainjob=True), Engines(jobset=True), Engines(True, True)

# gpus x nodes x method x engines -> (kind, processes per node, command head)
CASES = [
    (gpus, nodes, method, found)
    for gpus, nodes, method, found in product(
        (0, 1, 2, 8), (1, 2), ("lora", "full"), (NONE, TJ, JS, BOTH)
    )
]


def expected(gpus: int, nodes: int, found: Engines) -> tuple[str | None, list[str]]:
    if nodes == 1:
        kind = "Job"
    else:
        kind = "TrainJob" if found.trainjob else "JobSet" if found.jobset else None
    if nodes == 1 and gpus <= 1:
        command = ["python", "-m", "model_garden.training"]
    elif nodes == 1:
        command = [
            "python",
            "-m",
            "model_garden.training.launch",
            "--standalone",
            f"--nproc-per-node={gpus}",
            "-m",
            "model_garden.training",
        ]
    else:
        command = ["python", "-m", "model_garden.training.launch", "-m", "model_garden.training"]
    return kind, command


@pytest.mark.parametrize(("gpus", "nodes", "method", "found"), CASES)
def test_planner_table(gpus: int, nodes: int, method: str, found: Engines) -> None:
    workload, obj = rendered(finetunejob(gpus, nodes, method), found)
    kind, command = expected(gpus, nodes, found)
    assert workload.kind == kind
    if kind is None:
        assert workload.refused is not None and "spec.nodes is 2" in workload.refused
        assert "TrainJob" in workload.refused and "JobSet" in workload.refused
        return
    assert workload.refused is None and obj["kind"] == kind
    if kind == "Job":
        (c,) = obj["spec"]["template"]["spec"]["containers"]
        assert c["command"] == command and c["args"] == CONFIG
        assert c["resources"]["limits"].get("nvidia.com/gpu") == (str(gpus) if gpus else None)
        return
    validate(obj)  # the real CRD's schema, undeclared fields refused
    procs = max(1, gpus)
    if kind == "TrainJob":
        trainer = obj["spec"]["trainer"]
        assert trainer["command"] == command and trainer["args"] == CONFIG
        assert (trainer["numNodes"], trainer["numProcPerNode"]) == (nodes, procs)
        assert obj["spec"]["runtimeRef"]["name"] == "torch-distributed"
    else:
        (rj,) = obj["spec"]["replicatedJobs"]
        assert rj["replicas"] == nodes
        (c,) = rj["template"]["spec"]["template"]["spec"]["containers"]
        assert c["command"] == command and c["args"] == CONFIG
        env = {e["name"]: e for e in c["env"]}
        assert env["PET_NNODES"]["value"] == str(nodes)
        assert env["PET_NPROC_PER_NODE"]["value"] == str(procs)
        assert env["PET_MASTER_ADDR"]["value"] == "tune-train-node-0-0.tune-train"
        assert env["PET_NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.annotations['jobset.sigs.k8s.io/job-index']"
        )


def test_trainjob_carries_the_one_node_pod() -> None:
    body = finetunejob(2, 3, queueName="team-queue", activeDeadlineSeconds=600)
    model = FineTuneJob.model_validate(body)
    mounts = Mounts()
    build_training_config(model, 1, SETTINGS, mounts)
    job = build_job(body, model, 1, SETTINGS, mounts)
    tj = render(job, model, "TrainJob")
    validate(tj)
    pod = job["spec"]["template"]["spec"]
    (patch,) = tj["spec"]["runtimePatches"]
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    node_pod = node["template"]["spec"]["template"]["spec"]
    assert node_pod["volumes"] == pod["volumes"]
    assert node_pod["nodeSelector"] == {"pool": "gpu"} and node_pod["tolerations"]
    # no init container can ride along (the runtime patch schema refuses one): the claims it
    # prepared are mounted whole and writable, read-only mounts kept, every config path covered
    assert "initContainers" not in node_pod
    mounts = node_pod["containers"][0]["volumeMounts"]
    assert {
        "name": "claim-artifacts",
        "mountPath": "/mnt/model-garden/artifacts",
        "readOnly": False,
    } in mounts
    config = build_training_config(model, 1, SETTINGS, Mounts())
    for path in (
        config.runtime.output_dir,
        config.runtime.checkpoint_dir,
        config.runtime.dataset_path,
    ):
        assert any(path == m["mountPath"] or path.startswith(m["mountPath"] + "/") for m in mounts)
    assert all(m.get("readOnly") for m in mounts if m["name"] == "claim-data")
    assert tj["spec"]["suspend"] is True  # Kueue admits it, like the Job
    assert tj["spec"]["activeDeadlineSeconds"] == 600
    assert tj["metadata"]["ownerReferences"] == job["metadata"]["ownerReferences"]
    assert tj["spec"]["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "2"


def test_jobset_fails_at_once_on_bad_input_and_restarts_otherwise() -> None:
    _, js = rendered(finetunejob(8, 2, backoffLimit=4), JS)
    policy = js["spec"]["failurePolicy"]
    assert policy["maxRestarts"] == 4
    assert policy["rules"] == [
        {"name": "bad-input", "action": "FailJobSet", "onJobFailureReasons": ["PodFailurePolicy"]}
    ]
    node_job = js["spec"]["replicatedJobs"][0]["template"]["spec"]
    assert node_job["backoffLimit"] == 0
    codes = node_job["podFailurePolicy"]["rules"][1]["onExitCodes"]["values"]
    assert codes == [2, 3]


def test_schema_validation_catches_a_wrong_field() -> None:
    # the check has teeth: a misspelt field is refused, as the API server would prune it
    _, tj = rendered(finetunejob(2, 2), TJ)
    bad = copy.deepcopy(tj)
    bad["spec"]["trainer"]["numProcsPerNode"] = bad["spec"]["trainer"].pop("numProcPerNode")
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    _, js = rendered(finetunejob(2, 2), JS)
    bad = copy.deepcopy(js)
    bad["spec"]["replicatedJobs"][0]["replica"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)


def test_trainer_command_table() -> None:
    assert trainer_command(0, 1) == ["python", "-m", "model_garden.training"]
    assert trainer_command(1, 1) == ["python", "-m", "model_garden.training"]
    assert trainer_command(4, 1)[3:5] == ["--standalone", "--nproc-per-node=4"]
    assert "--standalone" not in trainer_command(4, 2)


@pytest.mark.parametrize(
    ("backend", "gpus", "nodes", "falls_back"),
    [
        ("auto", 2, 1, True),
        ("unsloth", 2, 1, True),
        ("unsloth", 1, 2, True),
        ("auto", 0, 2, False),  # auto on CPU is transformers anyway
        ("transformers", 8, 2, False),
        ("unsloth", 1, 1, False),
        ("auto", 1, 1, False),
    ],
)
def test_backend_fallback_event(backend: str, gpus: int, nodes: int, falls_back: bool) -> None:
    model = FineTuneJob.model_validate(finetunejob(gpus, nodes, backend=backend))
    note = multinode.backend_fallback(model)
    assert (note is not None) == falls_back
    if note:
        assert "Unsloth" in note and "transformers" in note


@pytest.mark.parametrize("nodes", [0, 65, -1])
def test_nodes_out_of_range_is_refused_naming_the_field(nodes: int) -> None:
    with pytest.raises(ValidationError, match="nodes"):
        FineTuneJob.model_validate(finetunejob(1, nodes))


def apis(*group_versions: tuple[str, str]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for g, v in group_versions:
        groups.setdefault(g, []).append(v)
    return {
        "groups": [
            {"name": g, "versions": [{"version": v} for v in vs]} for g, vs in groups.items()
        ]
    }


def test_engines_need_the_resource_not_only_the_group() -> None:
    groups = apis(TRAINJOB[:2], JOBSET[:2])
    both = {TRAINJOB[:2]: {"trainjobs", "trainingruntimes"}, JOBSET[:2]: {"jobsets"}}
    assert engines(groups, both) == Engines(trainjob=True, jobset=True)
    # Trainer v2 serving only its runtimes (no trainjobs) does not count
    assert engines(groups, {TRAINJOB[:2]: {"trainingruntimes"}}) == Engines()
    # an older JobSet (v1alpha1 only) is not the version rendered here
    assert engines(apis(("jobset.x-k8s.io", "v1alpha1")), {}) == Engines()


def test_discover_asks_only_listed_group_versions_and_survives_a_broken_one() -> None:
    asked: list[str] = []

    def call(method: str, path: str) -> Any:
        asked.append(path)
        if path == "/apis":
            return apis(("apps", "v1"), TRAINJOB[:2], JOBSET[:2])
        if path == "/apis/trainer.kubeflow.org/v1alpha1":
            raise ApiException(status=503)
        return {"resources": [{"name": "jobsets"}, {"name": "jobsets/status"}]}

    assert discover(call) == Engines(trainjob=False, jobset=True)
    assert asked == [
        "/apis",
        "/apis/trainer.kubeflow.org/v1alpha1",
        "/apis/jobset.x-k8s.io/v1alpha2",
    ]
    assert UNAVAILABLE == "MultiNodeUnavailable"


def test_refusal_fails_the_job_once_with_the_reason_and_creates_nothing() -> None:
    model = FineTuneJob.model_validate(finetunejob(1, 2))
    workload = choose(2, NONE)
    plan, st = Plan(), StatusDraft(model, NOW)
    multinode.refuse(plan, st, workload)
    got = {c.type: (c.status, c.reason, c.message) for c in st.conditions}
    assert got["Failed"] == ("True", UNAVAILABLE, workload.refused)
    assert got["Running"][:2] == ("False", UNAVAILABLE)
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", UNAVAILABLE)]
    assert plan.create == [] and st.fields["completionTime"]
    # the next reconcile (Failed already set): no second event
    again = Plan()
    multinode.refuse(again, st, workload)
    assert again.events == []


def test_backend_fallback_event_rides_with_the_workloads_creation() -> None:
    body = finetunejob(4, 1, backend="unsloth")
    workload, job = rendered(body, NONE)
    plan = Plan()
    multinode.announce(plan, FineTuneJob.model_validate(body), job)
    (event,) = plan.events
    assert (event.type, event.reason, event.if_created) == (
        "Normal",
        "BackendFallback",
        job["metadata"]["name"],
    )
    quiet = Plan()
    multinode.announce(quiet, FineTuneJob.model_validate(finetunejob(1, 1)), job)
    assert quiet.events == []


def test_the_planner_refuses_more_than_one_node_without_an_engine() -> None:
    """Neither TrainJob nor JobSet served: a multi-node job fails at once with the reason and
    nothing is made (following one that exists: test_multinode_follow.py)."""
    from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob

    from .factories import NOW, SETTINGS, conditions, ftj

    plan = plan_finetunejob(ftj(nodes=2), FineTuneJobWorld(), SETTINGS, NOW)
    assert plan.create == []
    assert conditions(plan.status)["Failed"] == ("True", "MultiNodeUnavailable")
    failed = next(c for c in (plan.status or {})["conditions"] if c["type"] == "Failed")
    assert "spec.nodes to 1" in failed["message"]
    single = plan_finetunejob(ftj(), FineTuneJobWorld(), SETTINGS, NOW)
    assert [e.reason for e in single.events if e.reason == "BackendFallback"] == ["BackendFallback"]
