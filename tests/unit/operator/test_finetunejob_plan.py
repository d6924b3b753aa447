"""FineTuneJob planner: a table of named behaviours, no cluster."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from model_garden.api import ModelVersion
from model_garden.api.contracts import TrainingConfig, TrainingProgress
from model_garden.operator.finetunejob.objects import (
    TRAINER_EXIT_BAD_INPUT,
    TRAINER_EXIT_INVALID_CONFIG,
)
from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob
from model_garden.operator.plan import Plan
from model_garden.operator.policy import POLICY_KEY, PolicyError, load_policy
from model_garden.operator.settings import TRAINER_SIGTERM_GRACE_SECONDS
from model_garden.training.run import EXIT_BAD_INPUT, EXIT_INVALID_CONFIG

from .factories import NOW, SETTINGS, conditions, ftj, job, mvt, pod, result, ts

RUNNING = {
    "conditions": [{"type": "Running", "status": "True", "reason": "Training"}],
    "jobName": "tune-train",
    "observedGeneration": 1,
}
BUDGET_STOPPED = {
    "conditions": [
        {"type": "Failed", "status": "True", "reason": "CarbonBudgetExceeded"},
        {"type": "Running", "status": "False", "reason": "CarbonBudgetExceeded"},
    ],
    "jobName": "tune-train",
    "carbon": {"energyKwh": 0.2, "emissionsKg": 0.02},
    "completionTime": "2026-11-27T11:00:00Z",
    "observedGeneration": 1,
}
SUCCEEDED = {
    "conditions": [{"type": "Succeeded", "status": "True", "reason": "Completed"}],
    "modelVersion": "chat-v1",
    "observedGeneration": 1,
}


@dataclass
class Case:
    name: str
    body: dict[str, Any]
    world: FineTuneJobWorld = field(default_factory=FineTuneJobWorld)
    creates: list[str] = field(default_factory=list)  # "Kind/name"
    conds: dict[str, tuple[str, str]] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # reasons
    no_status_change: bool = False
    passes: int = 1
    """Plans until nothing is left to do (2: a transition that first removes, then creates)."""


def _progress() -> TrainingProgress:
    return TrainingProgress.model_validate(
        {
            "state": "Training",
            "step": 40,
            "totalSteps": 100,
            "loss": 1.3,
            "energyKwh": 0.2,
            "emissionsKg": 0.02,
        }
    )


ONE_GPU = load_policy(
    {"data": {POLICY_KEY: "allowedImagePrefixes: ['registry.team/']\nmaxGpusPerPod: 1\n"}},
    SETTINGS,
)
BROKEN = PolicyError(ONE_GPU.source, ["not YAML"])

CASES = [
    Case(
        "new job creates its ConfigMap and Job",
        ftj(),
        creates=["ConfigMap/tune-train-config", "Job/tune-train"],
        conds={"Running": ("False", "Starting")},
        events=["JobCreated", "BackendFallback"],  # 2 GPUs: 2 processes, no Unsloth
    ),
    Case(
        "new job reserves the version after existing and reserved ones",
        ftj(),
        FineTuneJobWorld(
            model_versions=[mvt("chat-v1"), mvt("chat-v2", version=2)], reserved_versions={3}
        ),
        creates=["ConfigMap/tune-train-config", "Job/tune-train"],
        conds={"Running": ("False", "Starting")},
        events=["JobCreated", "BackendFallback"],  # 2 GPUs: 2 processes, no Unsloth
    ),
    Case(
        "default policy (no ConfigMap) refuses a foreign image: nothing created, said once",
        ftj(image="evil.example/miner:1"),
        conds={"Running": ("False", "PolicyRefused")},
        events=["PolicyRefused"],
    ),
    Case(
        "default policy refuses a toleration of every taint",
        ftj(resources={"tolerations": [{"operator": "Exists"}]}),
        conds={"Running": ("False", "PolicyRefused")},
        events=["PolicyRefused"],
    ),
    Case(
        "an installed policy refuses more GPUs than it allows",
        ftj(image="registry.team/trainer:2"),
        FineTuneJobWorld(policy=ONE_GPU),
        conds={"Running": ("False", "PolicyRefused")},
        events=["PolicyRefused"],
    ),
    Case(
        "an installed policy admits what it allows",
        ftj(image="registry.team/trainer:2", resources={"gpus": 1}),
        FineTuneJobWorld(policy=ONE_GPU),
        creates=["ConfigMap/tune-train-config", "Job/tune-train"],
        conds={"Running": ("False", "Starting")},
        events=["JobCreated"],
    ),
    Case(
        "a broken policy ConfigMap refuses every new job (fail closed)",
        ftj(),
        FineTuneJobWorld(policy=BROKEN),
        conds={"Running": ("False", "PolicyRefused")},
        events=["PolicyRefused"],
    ),
    Case(
        "a running job is not checked again: a later policy does not stop it",
        ftj(image="evil.example/miner:1", status=RUNNING),
        FineTuneJobWorld(
            job=job(), pods=[pod(phase="Running")], policy=BROKEN, progress=_progress()
        ),
        conds={"Running": ("True", "Training")},
    ),
    Case(
        "new job waits with Queued when the namespace cap is reached",
        ftj(),
        FineTuneJobWorld(running_in_namespace=2),
        conds={"Running": ("False", "Queued")},
        events=["Queued"],
    ),
    Case(
        "new job waits behind older queued jobs",
        ftj(),
        FineTuneJobWorld(running_in_namespace=1, older_waiting=1),
        conds={"Running": ("False", "Queued")},
        events=["Queued"],
    ),
    Case(
        "kueue job ignores the operator cap and starts suspended",
        ftj(queueName="gpu-queue"),
        FineTuneJobWorld(running_in_namespace=5),
        creates=["ConfigMap/tune-train-config", "Job/tune-train"],
        conds={"Running": ("False", "Queued")},
        events=["JobCreated", "BackendFallback"],  # 2 GPUs: 2 processes, no Unsloth
    ),
    Case(
        "base model version missing waits with BaseModelNotFound",
        ftj(baseModel={"modelVersion": {"name": "base-v1"}}),
        conds={"Running": ("False", "BaseModelNotFound")},
        events=["BaseModelNotFound"],
    ),
    Case(
        "base model version not ready yet waits",
        ftj(baseModel={"modelVersion": {"name": "base-v1"}}),
        FineTuneJobWorld(base_model_version=mvt("base-v1", "base", 1, ready=False)),
        conds={"Running": ("False", "BaseModelNotReady")},
    ),
    Case(
        "job running with progress",
        ftj(status=RUNNING),
        FineTuneJobWorld(job=job(), pods=[pod("Running")], progress=_progress()),
        conds={"Running": ("True", "Training")},
    ),
    Case(
        "pod pending and unschedulable says why",
        ftj(),
        FineTuneJobWorld(job=job(), pods=[pod(unschedulable=True)]),
        conds={"Running": ("False", "Unschedulable")},
        events=["Unschedulable"],
    ),
    Case(
        "unschedulable too long fails and deletes the Job",
        ftj(),
        FineTuneJobWorld(job=job(), pods=[pod(unschedulable=True, age_s=900)]),
        conds={"Failed": ("True", "Unschedulable"), "Running": ("False", "Unschedulable")},
        deletes=["Job/tune-train"],
        events=["Unschedulable"],
    ),
    Case(
        "image pull failure is reported",
        ftj(),
        FineTuneJobWorld(job=job(), pods=[pod(waiting="ImagePullBackOff")]),
        conds={"Running": ("False", "ImagePullFailed")},
        events=["ImagePullFailed"],
    ),
    Case(
        "invalid image name fails at once",
        ftj(),
        FineTuneJobWorld(job=job(), pods=[pod(waiting="InvalidImageName")]),
        conds={"Failed": ("True", "ImagePullFailed")},
        deletes=["Job/tune-train"],
        events=["ImagePullFailed"],
    ),
    Case(
        "job succeeded creates ModelVersion with the reserved version",
        ftj(status=RUNNING),
        FineTuneJobWorld(
            job=job(version="chat-v4", finished="Complete"),
            pods=[pod("Succeeded", exit_code=0, message=result().to_termination_message())],
        ),
        creates=["ModelVersion/chat-v4"],
        conds={
            "Succeeded": ("True", "Completed"),
            "Running": ("False", "Completed"),
            "Failed": ("False", "Completed"),
        },
        events=["ModelVersionCreated", "Succeeded"],
    ),
    Case(
        "job succeeded but reserved name taken by an import takes the next free version",
        ftj(status=RUNNING),
        FineTuneJobWorld(
            job=job(finished="Complete"),
            pods=[pod("Succeeded", exit_code=0, message=result().to_termination_message())],
            model_versions=[mvt("chat-v1")],
        ),
        creates=["ModelVersion/chat-v2"],
        conds={
            "Succeeded": ("True", "Completed"),
            "Running": ("False", "Completed"),
            "Failed": ("False", "Completed"),
        },
        events=["ModelVersionCreated", "Succeeded"],
    ),
    Case(
        "operator restarted after success adopts the existing ModelVersion",
        ftj(status=RUNNING),
        FineTuneJobWorld(
            job=job(finished="Complete"),
            pods=[pod("Succeeded", exit_code=0, message=result().to_termination_message())],
            model_versions=[mvt("chat-v1", uid_label="uid-tune")],
        ),
        conds={
            "Succeeded": ("True", "Completed"),
            "Running": ("False", "Completed"),
            "Failed": ("False", "Completed"),
        },
        events=["Succeeded"],
    ),
    Case(
        "mistyped token Secret says which Secret is missing",
        ftj(),
        FineTuneJobWorld(
            job=job(),
            pods=[
                pod(
                    waiting="CreateContainerConfigError",
                    waiting_message='secret "hf" not found',
                )
            ],
        ),
        conds={"Running": ("False", "ContainerConfigError")},
        events=["ContainerConfigError"],
    ),
    Case(
        "missing Secret key for longer than the timeout fails and deletes the Job",
        ftj(),
        FineTuneJobWorld(
            job=job(),
            pods=[
                pod(
                    waiting="CreateContainerConfigError",
                    waiting_message="couldn't find key token in Secret team/hf",
                    age_s=900,
                )
            ],
        ),
        conds={"Failed": ("True", "ContainerConfigError")},
        deletes=["Job/tune-train"],
        events=["ContainerConfigError"],
    ),
    Case(
        "pod stuck in ContainerCreating (FailedMount) past the timeout fails",
        ftj(),
        FineTuneJobWorld(
            job=job(),
            pods=[pod(waiting="ContainerCreating", waiting_message="", scheduled=True, age_s=900)],
        ),
        conds={"Failed": ("True", "ContainerCreationStuck")},
        deletes=["Job/tune-train"],
        events=["ContainerCreationStuck"],
    ),
    Case(
        "pod creating its container within the timeout is Starting",
        ftj(),
        FineTuneJobWorld(
            job=job(),
            pods=[pod(waiting="ContainerCreating", waiting_message="", scheduled=True, age_s=60)],
        ),
        conds={"Running": ("False", "Starting")},
    ),
    Case(
        "Job that creates no pod (FailedCreate) fails after the timeout",
        ftj(),
        FineTuneJobWorld(job=job(age_s=900)),
        conds={"Failed": ("True", "PodCreationFailed")},
        deletes=["Job/tune-train"],
        events=["PodCreationFailed"],
    ),
    Case(
        "Job without a pod yet, within the timeout, is Starting",
        ftj(),
        FineTuneJobWorld(job=job(age_s=60)),
        conds={"Running": ("False", "Starting")},
    ),
    Case(
        "succeeded job already recorded changes nothing",
        ftj(status=SUCCEEDED),
        FineTuneJobWorld(
            job=job(finished="Complete"), model_versions=[mvt("chat-v1", uid_label="uid-tune")]
        ),
        no_status_change=True,
    ),
    Case(
        "completed Job whose pod status is not observed yet waits",
        ftj(status=RUNNING),
        FineTuneJobWorld(job=job(finished="Complete", completion=ts(-5))),
        no_status_change=True,
    ),
    Case(
        "completed Job without any result fails with ResultMissing",
        ftj(status=RUNNING),
        FineTuneJobWorld(job=job(finished="Complete", completion=ts(-3600))),
        conds={
            "Failed": ("True", "ResultMissing"),
            "Running": ("False", "ResultMissing"),
            "Succeeded": ("False", "ResultMissing"),
        },
        events=["ResultMissing"],
    ),
    Case(
        "job failed with OOMKilled",
        ftj(status=RUNNING),
        FineTuneJobWorld(
            job=job(finished="Failed", reason="BackoffLimitExceeded"),
            pods=[pod("Failed", exit_code=137, reason="OOMKilled")],
        ),
        conds={
            "Failed": ("True", "OOMKilled"),
            "Running": ("False", "OOMKilled"),
            "Succeeded": ("False", "OOMKilled"),
        },
        events=["OOMKilled"],
    ),
    Case(
        "job failed with a dataset error from the termination message",
        ftj(status=RUNNING),
        FineTuneJobWorld(
            job=job(finished="Failed", reason="BackoffLimitExceeded"),
            pods=[
                pod(
                    "Failed",
                    exit_code=1,
                    message=result(
                        outcome="Failed",
                        reason="DatasetError",
                        message="line 7: no 'messages' field",
                        artifacts=[],
                    ).to_termination_message(),
                )
            ],
        ),
        conds={
            "Failed": ("True", "DatasetError"),
            "Running": ("False", "DatasetError"),
            "Succeeded": ("False", "DatasetError"),
        },
        events=["DatasetError"],
    ),
    Case(
        "bad input fails at once while the Job would still retry (no podFailurePolicy < 1.26)",
        ftj(status=RUNNING),
        FineTuneJobWorld(
            job=job(),
            pods=[
                pod(
                    "Failed",
                    exit_code=3,
                    message=result(
                        outcome="Failed",
                        reason="DatasetError",
                        message="data.jsonl, line 4: invalid JSON at column 1",
                        artifacts=[],
                    ).to_termination_message(),
                )
            ],
        ),
        conds={
            "Failed": ("True", "DatasetError"),
            "Running": ("False", "DatasetError"),
            "Succeeded": ("False", "DatasetError"),
        },
        events=["DatasetError"],
        deletes=["Job/tune-train"],
    ),
    Case(
        "job failed by deadline",
        ftj(status=RUNNING, activeDeadlineSeconds=60),
        FineTuneJobWorld(job=job(finished="Failed", reason="DeadlineExceeded")),
        conds={
            "Failed": ("True", "DeadlineExceeded"),
            "Running": ("False", "DeadlineExceeded"),
            "Succeeded": ("False", "DeadlineExceeded"),
        },
        events=["DeadlineExceeded"],
    ),
    Case(
        "suspend true suspends a running Job",
        ftj(status=RUNNING, suspend=True),
        FineTuneJobWorld(job=job(), pods=[pod("Running")]),
        patches=[{"spec": {"suspend": True}}],
        conds={"Running": ("False", "Suspended")},
        events=["Suspended", "Suspended"],
    ),
    Case(
        "suspend false resumes a suspended Job without Kueue",
        ftj(status=RUNNING),
        FineTuneJobWorld(job=job(suspend=True), pods=[]),
        patches=[{"spec": {"suspend": False}}],
        conds={"Running": ("False", "Starting")},
        events=["Resumed"],
    ),
    Case(
        "kueue job not yet admitted is left to Kueue",
        ftj(status=RUNNING, queueName="gpu-queue"),
        FineTuneJobWorld(job=job(suspend=True)),
        conds={"Running": ("False", "Queued")},
        events=["Queued"],
    ),
    Case(
        "spec changed after start is ignored with an event",
        ftj(status=RUNNING, generation=2),
        FineTuneJobWorld(job=job(), pods=[pod("Running")]),
        conds={"Running": ("True", "Training")},
        events=["SpecChangeIgnored"],
    ),
    Case(
        "carbon budget exceeded stops the job",
        ftj(status=RUNNING, carbon={"budgetKg": "0.01"}),
        FineTuneJobWorld(job=job(), pods=[pod("Running")], progress=_progress()),
        conds={
            "Failed": ("True", "CarbonBudgetExceeded"),
            "Running": ("False", "CarbonBudgetExceeded"),
        },
        deletes=["Job/tune-train"],
        events=["CarbonBudgetExceeded"],
    ),
    Case(
        "budget-stopped job whose budget is unchanged stays failed",
        ftj(status=BUDGET_STOPPED, carbon={"budgetKg": "0.01"}),
        FineTuneJobWorld(job=job(finished="Failed")),
        conds={"Failed": ("True", "CarbonBudgetExceeded")},
        no_status_change=True,
    ),
    Case(
        "raised budget first removes the stopped Job and its old config",
        ftj(status=BUDGET_STOPPED, carbon={"budgetKg": "0.05"}, generation=2),
        FineTuneJobWorld(job=job(finished="Failed")),
        deletes=["Job/tune-train", "ConfigMap/tune-train-config"],
        conds={"Failed": ("True", "CarbonBudgetExceeded"), "Running": ("False", "Resuming")},
        events=["BudgetRaised"],
        passes=2,
    ),
    Case(
        "raised budget resumes with a new Job once the old one is gone",
        ftj(status=BUDGET_STOPPED, carbon={"budgetKg": "0.05"}, generation=2),
        FineTuneJobWorld(),
        creates=["ConfigMap/tune-train-config", "Job/tune-train"],
        conds={
            "Failed": ("False", "Resumed"),
            "Succeeded": ("False", "Resumed"),
            "Running": ("False", "Starting"),
        },
        events=["JobCreated", "BackendFallback"],  # 2 GPUs: 2 processes, no Unsloth
    ),
]


def _names(objs: list[dict[str, Any]]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objs]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_finetunejob_planner(case: Case) -> None:
    plan = plan_finetunejob(case.body, case.world, SETTINGS, NOW)
    assert _names(plan.create) == case.creates
    assert [f"{r.kind}/{r.name}" for r in plan.delete] == case.deletes
    assert [p for _, p in plan.patch] == case.patches
    assert [e.reason for e in plan.events] == case.events
    if case.no_status_change:
        assert plan.status is None
    else:
        got = conditions(plan.status)
        for ctype, expected in case.conds.items():
            assert got.get(ctype) == expected, (ctype, got)


def _apply(body: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The body after the plan's status patch (what the next event would carry)."""
    out = json.loads(json.dumps(body))
    out.setdefault("status", {}).update(plan.status or {})
    out["metadata"]["generation"] = (
        out["status"].get("observedGeneration") or out["metadata"]["generation"]
    )
    return out


def _world_after(world: FineTuneJobWorld, plan: Plan) -> FineTuneJobWorld:
    """The world once the plan's creates, patches and deletes were applied."""
    job = world.job
    pods = world.pods
    created_jobs = [o for o in plan.create if o["kind"] == "Job"]
    if created_jobs:
        job = created_jobs[0]
    for ref, patch in plan.patch:
        assert job is not None and ref.kind == "Job" and ref.name == job["metadata"]["name"]
        job = json.loads(json.dumps(job))
        job["spec"].update(patch["spec"])
    for ref in plan.delete:
        if ref.kind == "ConfigMap":  # the world holds no ConfigMaps: nothing to remove
            continue
        assert job is not None and ref.kind == "Job" and ref.name == job["metadata"]["name"]
        job, pods = None, []  # deleted with propagation: its pods go too
    created = [ModelVersion.model_validate(o) for o in plan.create if o["kind"] == "ModelVersion"]
    return replace(world, job=job, pods=pods, model_versions=world.model_versions + created)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_replanning_after_applying_changes_nothing(case: Case) -> None:
    """Every row: once its plan is applied (status, creates, patches, deletes), the next pass
    has nothing left to do."""
    body, world = case.body, case.world
    for _ in range(case.passes):
        plan = plan_finetunejob(body, world, SETTINGS, NOW)
        body, world = _apply(body, plan), _world_after(world, plan)
    again = plan_finetunejob(body, world, SETTINGS, NOW)
    assert again.empty, again.details() + [e.reason for e in again.events]


def test_new_job_builds_the_training_config_and_job() -> None:
    plan = plan_finetunejob(
        ftj(activeDeadlineSeconds=7200, backoffLimit=3),
        FineTuneJobWorld(model_versions=[mvt()]),
        SETTINGS,
        NOW,
    )
    cm, job_obj = plan.create
    config = TrainingConfig.model_validate_json(cm["data"]["training-config.json"])
    assert config.model_version == 2
    assert config.runtime.output_dir == "/mnt/model-garden/artifacts/team/chat/v2"
    assert config.runtime.artifact_uri == "pvc://artifacts/team/chat/v2"
    assert config.runtime.checkpoint_dir == "/mnt/model-garden/artifacts/team/jobs/tune/checkpoints"
    assert config.runtime.dataset_path == "/mnt/model-garden/data/chat.jsonl"
    assert config.runtime.base_model == "org/base" and config.runtime.hf_token_env == "HF_TOKEN"
    assert config.runtime.country == "USA"
    spec = job_obj["spec"]
    assert (
        spec["backoffLimit"] == 3
        and spec["activeDeadlineSeconds"] == 7200
        and spec["suspend"] is False
    )
    pod_spec = spec["template"]["spec"]
    (c,) = pod_spec["containers"]
    assert c["command"] == [
        "python", "-m", "model_garden.training.launch", "--standalone", "--nproc-per-node=2",
        "-m", "model_garden.training",
    ]  # fmt: skip
    assert c["resources"]["limits"] == {"cpu": "2", "memory": "32Gi", "nvidia.com/gpu": "2"}
    # Guaranteed QoS for CPU and memory; scratch space requested (scheduled where it fits),
    # bounded by each emptyDir's sizeLimit, /dev/shm by the memory limit (issue 8, item 12).
    assert c["resources"]["requests"] == {**c["resources"]["limits"], "ephemeral-storage": "10Gi"}
    scratch = {v["name"]: v["emptyDir"] for v in pod_spec["volumes"] if "emptyDir" in v}
    assert scratch == {
        "tmp": {"sizeLimit": "4Gi"},
        "cache": {"sizeLimit": "100Gi"},
        "dshm": {"medium": "Memory", "sizeLimit": "32Gi"},
    }
    assert pod_spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    # Exit 2 (unreadable config) and 3 (bad input) fail the Job at once; evictions are ignored.
    rules = {r["action"]: r for r in spec["podFailurePolicy"]["rules"]}
    assert rules["FailJob"]["onExitCodes"] == {
        "containerName": "trainer",
        "operator": "In",
        "values": [TRAINER_EXIT_INVALID_CONFIG, TRAINER_EXIT_BAD_INPUT],
    }
    assert (TRAINER_EXIT_INVALID_CONFIG, TRAINER_EXIT_BAD_INPUT) == (
        EXIT_INVALID_CONFIG,
        EXIT_BAD_INPUT,
    )
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}} in c[
        "env"
    ]
    assert pod_spec["terminationGracePeriodSeconds"] > TRAINER_SIGTERM_GRACE_SECONDS
    assert pod_spec["nodeSelector"] == {"pool": "gpu"}
    assert pod_spec["tolerations"][0]["key"] == "nvidia.com/gpu"
    mounts = {
        m["mountPath"]: m["readOnly"] for m in c["volumeMounts"] if m["name"].startswith("claim-")
    }
    assert mounts == {  # only what the trainer needs; read-only where it only reads
        "/mnt/model-garden/artifacts/team/chat/v2": False,
        "/mnt/model-garden/artifacts/team/jobs/tune/checkpoints": False,
        "/mnt/model-garden/data/chat.jsonl": True,
    }
    assert job_obj["metadata"]["labels"]["modelgarden.dev/experiment"] == "exp1"
    assert job_obj["metadata"]["ownerReferences"][0]["uid"] == "uid-tune"
    assert "secretKeyRef" not in cm["data"]["training-config.json"]  # only the env var's name


def test_kueue_job_carries_the_queue_label_and_starts_suspended() -> None:
    plan = plan_finetunejob(ftj(queueName="gpu-queue"), FineTuneJobWorld(), SETTINGS, NOW)
    job_obj = plan.create[1]
    assert job_obj["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert job_obj["spec"]["suspend"] is True
    assert "kueue.x-k8s.io/queue-name" not in job_obj["spec"]["template"]["metadata"]["labels"]


def test_suspended_job_is_created_suspended() -> None:
    plan = plan_finetunejob(ftj(suspend=True), FineTuneJobWorld(), SETTINGS, NOW)
    assert plan.create[1]["spec"]["suspend"] is True
    assert conditions(plan.status)["Running"] == ("False", "Suspended")


def test_kueue_job_suspended_by_the_user_is_suspended_again() -> None:
    body = ftj(status=RUNNING, queueName="q", suspend=True)
    plan = plan_finetunejob(
        body, FineTuneJobWorld(job=job(suspend=False), pods=[pod("Running")]), SETTINGS, NOW
    )
    assert [p for _, p in plan.patch] == [{"spec": {"suspend": True}}]


def test_success_model_version_carries_lineage_metrics_and_carbon() -> None:
    world = FineTuneJobWorld(
        job=job(finished="Complete"),
        pods=[pod("Succeeded", exit_code=0, message=result().to_termination_message())],
    )
    plan = plan_finetunejob(ftj(status=RUNNING), world, SETTINGS, NOW)
    (created,) = plan.create
    spec = created["spec"]
    assert created["metadata"]["labels"]["modelgarden.dev/fine-tune-job-uid"] == "uid-tune"
    assert "ownerReferences" not in created["metadata"]  # a version outlives its job
    assert spec["source"] == {"fineTuneJob": "tune", "fineTuneJobUid": "uid-tune"}
    assert spec["artifact"] == {
        "uri": "pvc://artifacts/team/chat/v1/adapter",
        "format": "adapter",
        "digest": spec["artifact"]["digest"],
        "sizeBytes": 1000,
        "baseModel": "org/base",
    }
    assert spec["metrics"]["evalLoss"] == "1.1" and spec["trainingCarbon"]["emissionsKg"] == "0.05"
    assert plan.status and plan.status["carbon"]["method"] == "measured"
    assert plan.status["backend"] == "unsloth" and plan.status["modelVersion"] == "chat-v1"


def test_merge_output_produces_a_merged_model_version() -> None:
    world = FineTuneJobWorld(
        job=job(finished="Complete"),
        pods=[pod("Succeeded", exit_code=0, message=result().to_termination_message())],
    )
    plan = plan_finetunejob(
        ftj(status=RUNNING, output={"model": "chat", "merge": True}), world, SETTINGS, NOW
    )
    assert plan.create[0]["spec"]["artifact"]["format"] == "merged"
    assert "baseModel" not in plan.create[0]["spec"]["artifact"]


def test_running_progress_and_carbon_reach_status() -> None:
    world = FineTuneJobWorld(job=job(), pods=[pod("Running")], progress=_progress())
    plan = plan_finetunejob(ftj(status=RUNNING, carbon={"country": "FRA"}), world, SETTINGS, NOW)
    assert plan.status is not None
    assert plan.status["progress"]["step"] == 40 and plan.status["progress"]["totalSteps"] == 100
    assert (
        plan.status["carbon"]["emissionsKg"] == 0.02 and plan.status["carbon"]["country"] == "FRA"
    )


def test_oomkilled_message_names_what_to_change() -> None:
    world = FineTuneJobWorld(
        job=job(finished="Failed"), pods=[pod("Failed", exit_code=137, reason="OOMKilled")]
    )
    plan = plan_finetunejob(ftj(status=RUNNING), world, SETTINGS, NOW)
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")  # type: ignore[index]
    assert "32Gi" in failed["message"] and "spec.resources.memory" in failed["message"]


def test_new_job_shows_its_planned_steps_at_once() -> None:
    """``kubectl get ftj`` showed TOTAL 0 until the trainer first reported."""
    body = ftj(hyperparameters={"maxSteps": 30})
    plan = plan_finetunejob(body, FineTuneJobWorld(), SETTINGS, NOW)
    assert plan.status is not None and plan.status["progress"]["totalSteps"] == 30


def test_a_poll_before_the_trainer_counted_leaves_no_zero_total_at_the_end() -> None:
    """Seen on the real node: a run of 8 s was polled once while the trainer had not counted its
    data yet (total 0); ``kubectl get ftj`` then showed STEP 114, TOTAL 0 after it succeeded."""
    early = TrainingProgress.model_validate({"state": "Training", "step": 0, "totalSteps": 0})
    world = FineTuneJobWorld(job=job(), pods=[pod("Running")], progress=early)
    running = plan_finetunejob(ftj(status=RUNNING), world, SETTINGS, NOW)
    assert running.status is not None and "totalSteps" not in running.status["progress"]
    finished = FineTuneJobWorld(
        job=job(finished="Complete"),
        pods=[pod("Succeeded", exit_code=0, message=result().to_termination_message())],
    )
    body = ftj(status={**RUNNING, "progress": running.status["progress"]})
    plan = plan_finetunejob(body, finished, SETTINGS, NOW)
    assert plan.status is not None
    progress = plan.status["progress"]
    assert progress["totalSteps"] == progress["step"] == result().metrics.steps > 0


def test_running_status_rounds_loss_and_shows_emissions_for_people() -> None:
    progress = TrainingProgress.model_validate(
        {
            "state": "Training",
            "step": 3,
            "totalSteps": 0,
            "loss": 5.969635973056826,
            "energyKwh": 1e-6,
            "emissionsKg": 1.853453560257589e-07,
        }
    )
    body = ftj(status=RUNNING, hyperparameters={"maxSteps": 30})
    world = FineTuneJobWorld(job=job(), pods=[pod("Running")], progress=progress)
    plan = plan_finetunejob(body, world, SETTINGS, NOW)
    assert plan.status is not None
    assert plan.status["progress"]["loss"] == 5.97 and plan.status["progress"]["totalSteps"] == 30
    assert plan.status["carbon"]["emissions"] == "185 µg"
    assert plan.status["carbon"]["emissionsKg"] == 1.853453560257589e-07


def test_job_pod_failure_policy_ignores_disruptions_and_fails_on_a_bad_config() -> None:
    """Evictions must not use up backoffLimit; an unreadable config (2) or bad input (3: a
    dataset that does not parse, an output that is not ours, a refused checkpoint) cannot
    succeed on retry."""
    job_obj = plan_finetunejob(ftj(), FineTuneJobWorld(), SETTINGS, NOW).create[1]
    rules = job_obj["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert rules[1]["action"] == "FailJob"
    assert rules[1]["onExitCodes"] == {
        "containerName": "trainer",
        "operator": "In",
        "values": [2, 3],
    }
    assert job_obj["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # required by it


def test_mistyped_secret_message_names_the_secret_and_the_field() -> None:
    world = FineTuneJobWorld(
        job=job(),
        pods=[pod(waiting="CreateContainerConfigError", waiting_message='secret "hf" not found')],
    )
    plan = plan_finetunejob(ftj(), world, SETTINGS, NOW)
    running = next(c for c in plan.status["conditions"] if c["type"] == "Running")  # type: ignore[index]
    assert "Secret hf does not exist" in running["message"]
    assert "spec.baseModel.hub.tokenSecret" in running["message"]


def test_stuck_mount_message_names_the_configmap_and_claims() -> None:
    world = FineTuneJobWorld(
        job=job(), pods=[pod(waiting="ContainerCreating", waiting_message="", age_s=900)]
    )
    plan = plan_finetunejob(ftj(), world, SETTINGS, NOW)
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")  # type: ignore[index]
    assert "ConfigMap tune-train-config" in failed["message"]
    assert "PersistentVolumeClaim data" in failed["message"]


def test_trainer_pod_makes_its_output_folders_before_the_trainer_starts() -> None:
    job_obj = plan_finetunejob(ftj(), FineTuneJobWorld(), SETTINGS, NOW).create[1]
    pod_spec = job_obj["spec"]["template"]["spec"]
    (init,) = pod_spec["initContainers"]
    (trainer,) = pod_spec["containers"]
    writable = [
        m["mountPath"] for m in trainer["volumeMounts"] if m.get("subPath") and not m["readOnly"]
    ]
    assert init["name"] == "prepare-folders" and init["command"][3:] == writable
    assert (
        init["image"] == trainer["image"] and init["securityContext"] == trainer["securityContext"]
    )


def test_a_crash_that_a_retry_may_fix_is_left_to_the_jobs_retries() -> None:
    world = FineTuneJobWorld(job=job(), pods=[pod("Failed", exit_code=1), pod("Running")])
    plan = plan_finetunejob(ftj(status=RUNNING), world, SETTINGS, NOW)
    assert not plan.delete
    assert plan.status is None or not any(
        c["type"] == "Failed" and c["status"] == "True" for c in plan.status.get("conditions", [])
    )
