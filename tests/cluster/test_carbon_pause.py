"""Carbon-aware scheduling on the real node (issue 13, item 4): a running FineTuneJob pauses at
a checkpoint when the live provider's intensity rises above its threshold (the operator deletes
its Job; the trainer's SIGTERM handler writes the checkpoint before the pod exits), and resumes
from that checkpoint, in a new Job, when the intensity drops; it ends at the full step count
with one ModelVersion, and its status says the pause and the emissions avoided."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from harness.intensity import IntensityServer
from model_garden.api.labels import LABEL_FTJ

from .conftest import EXTERNAL_KUBECONFIG
from .platform import RELEASE, SYSTEM, TEAM, Platform, condition, wait_for
from .test_scenario import TOTAL_STEPS, finetunejob

pytestmark = pytest.mark.cluster


def _status(platform: Platform, job: str) -> dict[str, Any]:
    return dict((platform.get("ftj", job) or {}).get("status") or {})


def _pods(platform: Platform, job: str) -> list[dict[str, Any]]:
    return platform.items("pods", TEAM, f"{LABEL_FTJ}={job}")


def _trainer_job(platform: Platform, job: str) -> dict[str, Any] | None:
    return platform.get("job", f"{job}-train")


def test_a_running_job_pauses_at_a_checkpoint_and_resumes_when_the_grid_is_cleaner(
    platform: Platform, request: pytest.FixtureRequest
) -> None:
    if os.environ.get(EXTERNAL_KUBECONFIG):
        pytest.skip("the test's intensity provider listens on the harness node's own address")
    grid: IntensityServer = request.getfixturevalue("grid_server")
    grid.g_per_kwh = 100
    job = "pause"
    t = time.monotonic()
    carbon = {"country": "FRA", "maxGridIntensity": 200, "pauseAboveGridIntensity": 300}
    body = finetunejob(job, carbon=carbon)
    # Room to pause mid-run on a fast machine (seen: 600 steps in 14 s, done before the pause).
    body["spec"]["hyperparameters"]["maxSteps"] = 4 * TOTAL_STEPS
    platform.apply(body)
    first = wait_for("the trainer Job", lambda: _trainer_job(platform, job), 60)
    wait_for(
        "the trainer stepping",
        lambda: _status(platform, job).get("progress", {}).get("step", 0) >= 1,
        240,
        0.5,
    )
    platform.timed("pause: applied → training", t)
    t = time.monotonic()
    grid.g_per_kwh = 500  # above pauseAboveGridIntensity
    try:
        wait_for(
            "Paused",
            lambda: condition(platform.get("ftj", job), "Running").get("reason") == "Paused",
            60,
        )
    except AssertionError:
        operator = f"deployment/{RELEASE}-model-garden-operator"
        logs = platform.kubectl("logs", operator, "-n", SYSTEM, "--tail=2000", check=False)
        print(f"status: {_status(platform, job)}\nprovider requests: {grid.requests}")
        print(
            "operator log:",
            "\n".join(x for x in logs.stdout.splitlines() if "healthz" not in x)[-6000:],
        )
        raise
    paused_at = _status(platform, job)["progress"]["step"]
    wait_for("the trainer pod gone", lambda: not _pods(platform, job), 120)
    platform.timed("pause: intensity up → pod gone", t)
    assert _trainer_job(platform, job) is None
    grid.g_per_kwh = 250  # below the pause threshold, above maxGridIntensity: stays paused
    seen = grid.requests
    wait_for("two more readings", lambda: grid.requests >= seen + 2, 30)
    assert _trainer_job(platform, job) is None
    assert condition(platform.get("ftj", job), "Running").get("reason") == "Paused"

    t = time.monotonic()
    grid.g_per_kwh = 100
    second = wait_for(
        "the Job made again",
        lambda: (j := _trainer_job(platform, job)) and j["metadata"]["uid"] != first["metadata"]["uid"] and j,
        60,
    )  # fmt: skip
    assert second["metadata"]["labels"] == first["metadata"]["labels"]

    def succeeded() -> dict[str, Any] | None:
        ftj = platform.get("ftj", job)
        if condition(ftj, "Failed").get("status") == "True":
            raise AssertionError(f"{job} failed: {condition(ftj, 'Failed')}")
        return ftj if condition(ftj, "Succeeded").get("status") == "True" else None

    ftj = wait_for("Succeeded", succeeded, 300)
    platform.timed("pause: intensity down → Succeeded", t)
    (pod,) = _pods(platform, job)
    result = json.loads(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"])
    resumed = result.get("resumedFromStep")
    total = ftj["status"]["progress"]["totalSteps"]
    print(f"[e2e] paused at step ≥{paused_at}, resumed from {resumed}, finished {total}")
    # SIGTERM's checkpoint is at the step the trainer reached, at or after the one last polled.
    assert resumed is not None and paused_at <= resumed < total, (paused_at, resumed, result)
    assert result["metrics"]["steps"] == total
    sched = ftj["status"]["scheduling"]
    assert sched["pauses"] == 1 and sched["pausedSeconds"] > 0, sched
    assert sched["intensitySource"] == "electricitymaps:FR", sched
    # Started at the baseline (100) and ran both segments at 100: nothing avoided, exactly.
    assert sched["baselineGPerKwh"] == 100 and sched["avoidedKg"] == 0, sched
    versions = platform.items("modelversions", TEAM, f"{LABEL_FTJ}={job}")
    assert len(versions) == 1
    platform.kubectl("delete", "ftj", job, "-n", TEAM, "--wait=true")
