"""Carbon-aware scheduling (issue 13, item 4) on the planner: a window and a maximum intensity
hold the start (``Deferred``) until the intensity drops or the deadline forces it; a pause
threshold stops a running job at a checkpoint (its Job and config deleted) and a drop makes the
same Job again; the status says the time shifted and the emissions avoided, exactly."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from model_garden.api import FineTuneJob
from model_garden.api.contracts import TrainingProgress
from model_garden.api.finetunejob import SchedulingStatus
from model_garden.local.store import merge_patch
from model_garden.operator.finetunejob.admission import decide
from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob
from model_garden.operator.finetunejob.schedule import GridNow, avoided_kg
from model_garden.operator.plan import Plan

from .factories import NOW, SETTINGS, conditions, ftj, job, pod, result, ts


def grid(g: float) -> GridNow:
    return GridNow(g, "electricitymaps:FR", "2026-11-27T12:00:00Z")


def created(plan: Plan) -> list[str]:
    return sorted(o["kind"] for o in plan.create)


def running_reason(plan: Plan) -> tuple[str, str] | None:
    return conditions(plan.status).get("Running")


def message(plan: Plan) -> str:
    status = plan.status or {}
    return next(c["message"] for c in status["conditions"] if c["type"] == "Running")


def applied(body: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """The body as the API server holds it once the plan's status patch is applied."""
    out = copy.deepcopy(body)
    out["status"] = merge_patch(out.get("status") or {}, plan.status or {})
    return out


WINDOW = {"notBefore": ts(-3600), "notAfter": ts(3600)}
START_CASES: list[tuple[str, dict[str, Any], float, float, str | None]] = [
    # (name, spec.carbon, intensity now, seconds since first seen, expected hold reason or None)
    ("no threshold", {"schedulingWindow": WINDOW}, 900, 0, None),
    ("below the maximum", {"maxGridIntensity": 200}, 150, 0, None),
    ("at the maximum", {"maxGridIntensity": 200}, 200, 0, None),
    ("above the maximum", {"maxGridIntensity": 200}, 250, 0, "Deferred"),
    (
        "above, the window's notAfter passed",
        {"maxGridIntensity": 200, "schedulingWindow": {"notAfter": ts(-1)}},
        250,
        0,
        None,
    ),
    ("above, the operator's cap reached", {"maxGridIntensity": 200}, 250, 86400, None),
    ("above, the cap not yet reached", {"maxGridIntensity": 200}, 250, 86399, "Deferred"),
    ("before notBefore", {"schedulingWindow": {"notBefore": ts(60)}}, 10, 0, "Deferred"),
    ("after notBefore", {"schedulingWindow": {"notBefore": ts(-60)}}, 10, 0, None),
]


@pytest.mark.parametrize("case", START_CASES, ids=[c[0] for c in START_CASES])
def test_the_start_waits_for_the_window_and_the_intensity_until_the_deadline(
    case: tuple[str, dict[str, Any], float, float, str | None],
) -> None:
    _, carbon, intensity, since, held = case
    first = (NOW - timedelta(seconds=since)).isoformat().replace("+00:00", "Z")
    body = ftj(carbon=carbon, status={"scheduling": {"firstSeen": first}})
    plan = plan_finetunejob(body, FineTuneJobWorld(grid=grid(intensity)), SETTINGS, NOW)
    if held is None:
        assert created(plan) == ["ConfigMap", "Job"]
        return
    assert created(plan) == [] and running_reason(plan) == ("False", held)
    if "maxGridIntensity" in carbon:
        text = message(plan)
        assert f"{intensity:g} g CO2e/kWh (electricitymaps:FR at 2026-11-27T12:00:00Z)" in text
        assert "spec.carbon.maxGridIntensity (200)" in text and "at the latest" in text
    assert [e.reason for e in plan.events] == [held]


def test_defer_start_pause_resume_and_the_emissions_avoided_add_up() -> None:
    settings = SETTINGS
    carbon = {"maxGridIntensity": 200, "pauseAboveGridIntensity": 300}
    body = ftj(carbon=carbon)
    # 1. first seen at 400 g/kWh: deferred, 400 is the baseline of "starting at once"
    plan = plan_finetunejob(body, FineTuneJobWorld(grid=grid(400)), settings, NOW)
    assert created(plan) == [] and running_reason(plan) == ("False", "Deferred")
    body = applied(body, plan)
    sched = body["status"]["scheduling"]
    assert (sched["baselineGPerKwh"], sched["intensityGPerKwh"]) == (400, 400)
    # 2. an hour later, 100 g/kWh: the Job is made; the shift is recorded
    later = NOW + timedelta(hours=1)
    plan = plan_finetunejob(body, FineTuneJobWorld(grid=grid(100)), settings, later)
    assert created(plan) == ["ConfigMap", "Job"]
    first_job = next(o for o in plan.create if o["kind"] == "Job")
    first_config = next(o for o in plan.create if o["kind"] == "ConfigMap")
    body = applied(body, plan)
    sched = body["status"]["scheduling"]
    assert sched["deferredSeconds"] == 3600 and sched["segmentIntensityGPerKwh"] == 100
    # 3. running, 0.5 kWh so far, 500 g/kWh: paused (Job and config deleted, version kept)
    progress = TrainingProgress(step=40, total_steps=100, energy_kwh=0.5, emissions_kg=0.05)
    world = FineTuneJobWorld(job=job(), pods=[pod("Running")], progress=progress, grid=grid(500))
    at = later + timedelta(minutes=10)
    plan = plan_finetunejob(body, world, settings, at)
    assert [(r.kind, r.name) for r in plan.delete] == [
        ("Job", "tune-train"),
        ("ConfigMap", "tune-train-config"),
    ]
    assert running_reason(plan) == ("False", "Paused") and "500 g CO2e/kWh" in message(plan)
    body = applied(body, plan)
    sched = body["status"]["scheduling"]
    assert (sched["pauses"], sched["pausedVersion"]) == (1, 1)
    assert sched["finishedSegmentsGrams"] == pytest.approx(50.0)  # 0.5 kWh × 100 g/kWh
    # 4. the Job is on its way out: planning again neither pauses twice nor runs
    plan = plan_finetunejob(body, world, settings, at + timedelta(seconds=5))
    assert plan.create == [] and body["status"]["scheduling"]["pauses"] == 1
    assert (plan.status or {}).get("scheduling", sched)["pauses"] == 1
    # 5. the Job is gone but its pod still checkpoints: wait for it, whatever the intensity
    plan = plan_finetunejob(
        body, FineTuneJobWorld(pods=[pod("Running")], grid=grid(50)), settings, at
    )
    assert plan.create == [] and "checkpoint" in message(plan)
    # 6. the pod is gone, 250 g/kWh is still above the start threshold: stays paused
    plan = plan_finetunejob(body, FineTuneJobWorld(grid=grid(250)), settings, at)
    assert plan.create == [] and running_reason(plan) == ("False", "Paused")
    # 7. 150 g/kWh, 30 minutes later: the same Job and config are made again
    resumed_at = at + timedelta(minutes=30)
    plan = plan_finetunejob(body, FineTuneJobWorld(grid=grid(150)), settings, resumed_at)
    assert created(plan) == ["ConfigMap", "Job"]
    again = next(o for o in plan.create if o["kind"] == "Job")
    assert again == first_job, "the resumed Job differs: it would not resume the checkpoint"
    assert next(o for o in plan.create if o["kind"] == "ConfigMap") == first_config
    assert "Resumed" in [e.reason for e in plan.events]
    body = applied(body, plan)
    sched = body["status"]["scheduling"]
    assert sched["pausedSeconds"] == 1800 and "pausedSince" not in sched
    assert (sched["segmentIntensityGPerKwh"], sched["segmentStartEnergyKwh"]) == (150, 0.5)
    # 8. it completes at 1.0 kWh: avoided = 1.0×400 − (0.5×100 + 0.5×150) g = 275 g
    done = FineTuneJobWorld(
        job=job(finished="Complete"),
        pods=[pod("Succeeded", exit_code=0, message=result(carbon={"energyKwh": 1.0, "emissionsKg": 0.1}).to_termination_message())],
        grid=grid(150),
    )  # fmt: skip
    plan = plan_finetunejob(body, done, settings, resumed_at + timedelta(minutes=20))
    assert conditions(plan.status)["Succeeded"] == ("True", "Completed")
    assert (plan.status or {})["scheduling"]["avoidedKg"] == pytest.approx(0.275)


def test_pauses_stop_once_the_cap_is_used_and_a_long_pause_resumes() -> None:
    settings = SETTINGS.model_copy(update={"carbon_max_pause_seconds": 600})
    carbon = {"pauseAboveGridIntensity": 300}
    used = ftj(carbon=carbon, status={"scheduling": {"pausedSeconds": 600, "baselineGPerKwh": 1}})
    world = FineTuneJobWorld(job=job(), pods=[pod("Running")], grid=grid(900))
    assert plan_finetunejob(used, world, settings, NOW).delete == []
    paused = ftj(
        carbon=carbon,
        status={"scheduling": {"pausedSince": ts(-601), "pausedVersion": 1, "pauses": 1}},
    )
    plan = plan_finetunejob(paused, FineTuneJobWorld(grid=grid(900)), settings, NOW)
    assert created(plan) == ["ConfigMap", "Job"], "a pause is bounded by the operator's cap"
    plan = plan_finetunejob(
        paused, FineTuneJobWorld(grid=grid(900)), settings, NOW - timedelta(seconds=2)
    )
    assert plan.create == [] and running_reason(plan) == ("False", "Paused")


def test_held_jobs_keep_no_slot_and_a_paused_job_keeps_its_version() -> None:
    deferred = ftj(
        "early",
        carbon={"maxGridIntensity": 1},
        status={"conditions": [{"type": "Running", "status": "False", "reason": "Deferred"}]},
    )
    deferred["metadata"]["creationTimestamp"] = ts(-9000)
    paused = ftj(
        "paused",
        carbon={"pauseAboveGridIntensity": 1},
        status={
            "conditions": [{"type": "Running", "status": "False", "reason": "Paused"}],
            "scheduling": {"pausedSince": ts(-60), "pausedVersion": 3},
        },
    )
    paused["metadata"]["creationTimestamp"] = ts(-8000)
    me = FineTuneJob.model_validate(ftj())
    siblings = [FineTuneJob.model_validate(b) for b in (deferred, paused)] + [me]
    decision = decide(me, siblings, [], {})
    assert decision.older_waiting == 0
    assert decision.reserved_versions == frozenset({3})


def test_a_plan_from_a_stale_body_does_not_roll_the_schedule_back() -> None:
    """Seen on the real API server: right after the start was written, a plan made from the
    body before it (the Job already indexed) wrote the old schedule back. Only changed keys of
    ``scheduling`` are patched, so the later write keeps what the start recorded."""
    deferred = applied(
        ftj(carbon={"maxGridIntensity": 200}),
        plan_finetunejob(ftj(carbon={"maxGridIntensity": 200}), FineTuneJobWorld(grid=grid(400)), SETTINGS, NOW),
    )  # fmt: skip
    later = NOW + timedelta(seconds=90)
    start = plan_finetunejob(deferred, FineTuneJobWorld(grid=grid(100)), SETTINGS, later)
    fresh = applied(deferred, start)
    assert fresh["status"]["scheduling"]["deferredSeconds"] == 90
    stale = plan_finetunejob(deferred, FineTuneJobWorld(job=job(), grid=grid(120)), SETTINGS, later)
    after = applied(fresh, stale)["status"]["scheduling"]
    assert after["deferredSeconds"] == 90 and after["segmentIntensityGPerKwh"] == 100
    assert after["intensityGPerKwh"] == 120  # the newer reading is kept


def test_the_docs_example_is_a_valid_scheduled_job() -> None:
    """docs/carbon.md's "Carbon-aware scheduling" snippet parses as the spec it shows."""
    import re
    from pathlib import Path

    import yaml

    from model_garden.api.finetunejob import CarbonSettings

    text = (Path(__file__).parents[3] / "docs" / "carbon.md").read_text(encoding="utf-8")
    section = text.split("## Carbon-aware scheduling", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert block is not None
    carbon = CarbonSettings.model_validate(yaml.safe_load(block.group(1))["spec"]["carbon"])
    assert carbon.scheduled and carbon.max_grid_intensity == 120
    assert carbon.pause_above_grid_intensity == 250 and carbon.scheduling_window is not None


def test_a_run_at_the_baseline_throughout_avoided_exactly_nothing() -> None:
    """Seen on the real node: two segments at the baseline summed to 1.7e-21 kg, not 0."""
    first_kwh = 0.1  # with 1.1 kWh in all, the segments' sum rounds unlike the one product
    status = SchedulingStatus(
        baselineGPerKwh=100,
        finishedSegmentsGrams=first_kwh * 100,
        segmentIntensityGPerKwh=100,
        segmentStartEnergyKwh=first_kwh,
    )
    total_kwh = 1.1
    assert total_kwh * 100 != first_kwh * 100 + (total_kwh - first_kwh) * 100
    assert avoided_kg(status, total_kwh) == 0.0
    # A real difference still shows, however small against the total.
    status.segment_intensity_g_per_kwh = 99
    assert avoided_kg(status, total_kwh) == pytest.approx((total_kwh - first_kwh) * 1 / 1000)
