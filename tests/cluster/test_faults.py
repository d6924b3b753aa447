"""Faults on the real node, each its own test: what a user's cluster does to a run, and bad input.

They share the installed platform with the scenario (tests/cluster/test_scenario.py) and each
makes its own small FineTuneJob, so none depends on another's outcome.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from harness.node import Node, run
from model_garden.api.labels import LABEL_FTJ

from .platform import (
    BROKEN_DATASET_LINE,
    BROKEN_DATASET_URI,
    SYSTEM,
    TEAM,
    Platform,
    condition,
    wait_for,
)
from .test_scenario import CHECKPOINT_EVERY, finetunejob

pytestmark = pytest.mark.cluster

FORBIDDEN_IMAGE = "docker.io/somebody/trainer:latest"


def _job_pods(platform: Platform, job: str) -> list[dict[str, Any]]:
    return platform.items("pods", TEAM, f"{LABEL_FTJ}={job}")


def _progress(platform: Platform, job: str) -> dict[str, Any]:
    return ((platform.get("ftj", job) or {}).get("status") or {}).get("progress") or {}


def _succeeded(platform: Platform, job: str) -> dict[str, Any] | None:
    ftj = platform.get("ftj", job)
    if condition(ftj, "Failed").get("status") == "True":
        raise AssertionError(f"{job} failed: {condition(ftj, 'Failed')}")
    return ftj if condition(ftj, "Succeeded").get("status") == "True" else None


def _versions_of(platform: Platform, job: str) -> list[dict[str, Any]]:
    return platform.items("modelversions", TEAM, f"{LABEL_FTJ}={job}")


def test_killed_trainer_container_resumes_from_its_checkpoint(
    platform: Platform, node: Node
) -> None:
    job = "resume"
    t = time.monotonic()
    platform.apply(finetunejob(job))
    wait_for(
        "a checkpoint behind the trainer",
        lambda: _progress(platform, job).get("step", 0) > CHECKPOINT_EVERY + 2,
        240,
        0.5,
    )
    (pod,) = [p for p in _job_pods(platform, job) if p["status"].get("phase") == "Running"]
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == "trainer"]
    container = status["containerID"].removeprefix("containerd://")
    killed_at = _progress(platform, job)["step"]
    run([*node.ctr, "tasks", "kill", "--signal", "SIGKILL", container])  # as the OOM killer does
    platform.timed("resume: trained → container killed", t)

    ftj = wait_for("the retried Job finishing", lambda: _succeeded(platform, job), 300)
    platform.timed("resume: killed → Succeeded", t)
    pods = _job_pods(platform, job)
    first = next(p for p in pods if p["metadata"]["name"] == pod["metadata"]["name"])
    terminated = first["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 137, terminated
    assert len(pods) == 2, [p["metadata"]["name"] for p in pods]
    progress = ftj["status"]["progress"]
    assert progress["step"] == progress["totalSteps"], progress
    (second,) = [p for p in pods if p is not first]
    result = json.loads(second["status"]["containerStatuses"][0]["state"]["terminated"]["message"])
    resumed = result.get("resumedFromStep")
    print(f"[e2e] killed at step {killed_at}, resumed from {resumed}, finished {progress}")
    # The newest complete checkpoint at the kill, not step 0, and the full count in the end.
    assert resumed is not None and resumed % CHECKPOINT_EVERY == 0, result
    # status.progress lags the trainer by up to a poll (2 s, ~40 steps here): the checkpoint
    # may be newer than the step seen, never older than the last one before it.
    assert killed_at - CHECKPOINT_EVERY <= resumed < progress["totalSteps"], (killed_at, resumed)
    assert result["metrics"]["steps"] == progress["totalSteps"], result["metrics"]
    assert len(_versions_of(platform, job)) == 1
    platform.kubectl("delete", "ftj", job, "-n", TEAM, "--wait=true")


def test_operator_pod_deleted_while_training_makes_no_duplicates(platform: Platform) -> None:
    job = "handover"
    t = time.monotonic()
    platform.apply(finetunejob(job))
    wait_for("training under way", lambda: _progress(platform, job).get("step", 0) > 0, 240, 0.5)
    (old,) = platform.operator_pods()
    platform.kubectl("delete", "pod", old["metadata"]["name"], "-n", SYSTEM, "--wait=false")

    def new_operator_ready() -> bool:
        pods = [
            p for p in platform.operator_pods() if p["metadata"]["uid"] != old["metadata"]["uid"]
        ]
        return any(
            all(s.get("ready") for s in p["status"].get("containerStatuses") or [{}]) for p in pods
        )

    wait_for("a new operator pod Ready", new_operator_ready, 120)
    platform.timed("handover: operator replaced", t)
    wait_for("the job finishing under the new operator", lambda: _succeeded(platform, job), 300)
    platform.timed("handover: Succeeded", t)
    jobs = platform.items("jobs", TEAM, f"{LABEL_FTJ}={job}")
    assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
    time.sleep(5)  # a duplicate would be minted by a reconcile after Succeeded: give it time
    versions = _versions_of(platform, job)
    assert len(versions) == 1, [v["metadata"]["name"] for v in versions]
    platform.kubectl("delete", "ftj", job, "-n", TEAM, "--wait=true")


def _refused(platform: Platform, job: str) -> dict[str, Any] | None:
    cond = condition(platform.get("ftj", job), "Running")
    return cond if cond.get("reason") == "PolicyRefused" else None


def test_forbidden_image_is_refused_with_the_rule_named(platform: Platform) -> None:
    job = "forbidden"
    platform.apply(finetunejob(job, image=FORBIDDEN_IMAGE))
    cond = wait_for("the policy refusal", lambda: _refused(platform, job), 60)
    assert "allowedImagePrefixes" in cond["message"] and FORBIDDEN_IMAGE in cond["message"], cond
    assert not _job_pods(platform, job)
    assert not platform.items("jobs", TEAM, f"{LABEL_FTJ}={job}")
    platform.kubectl("delete", "ftj", job, "-n", TEAM, "--wait=true")


def test_operator_carries_on_after_kube_apiserver_restarts(platform: Platform, node: Node) -> None:
    assert node.kube is not None
    (before,) = platform.operator_pods()
    t = time.monotonic()
    node.kube.restart_apiserver(down_for=5)
    platform.timed("kube-apiserver restarted", t)
    job = "after-restart"
    platform.apply(finetunejob(job, image=FORBIDDEN_IMAGE))
    wait_for("the operator acting on a new FineTuneJob", lambda: _refused(platform, job), 120)
    platform.timed("restart → operator acted again", t)
    (after,) = platform.operator_pods()
    restarts = after["status"]["containerStatuses"][0]["restartCount"]
    print(f"[e2e] operator container restarts across the outage: {restarts}")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    platform.kubectl("delete", "ftj", job, "-n", TEAM, "--wait=true")


def test_malformed_dataset_line_fails_the_job_with_the_line_number(platform: Platform) -> None:
    job = "broken"
    t = time.monotonic()
    spec = finetunejob(job)
    spec["spec"]["dataset"]["uri"] = BROKEN_DATASET_URI
    platform.apply(spec)

    def failed() -> dict[str, Any] | None:
        cond = condition(platform.get("ftj", job), "Failed")
        return cond if cond.get("status") == "True" else None

    cond = wait_for("Failed", failed, 240)
    platform.timed("malformed dataset → Failed", t)
    print(f"[e2e] condition: {cond['message']}")
    assert f"line {BROKEN_DATASET_LINE}" in cond["message"], cond
    assert not _versions_of(platform, job)
    # Not retried: 1.20 drops the Job's podFailurePolicy, so the operator deletes the Job itself.
    wait_for(
        "the bad-input Job deleted",
        lambda: not platform.items("jobs", TEAM, f"{LABEL_FTJ}={job}"),
        60,
    )
    platform.kubectl("delete", "ftj", job, "-n", TEAM, "--wait=true")
