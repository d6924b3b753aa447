"""Carbon-aware scheduling on the real kube-apiserver (issue 13, item 4): the operator reads a
local provider speaking Electricity Maps' format, whose value the test changes. Deferred →
started when the intensity drops; the window's deadline forces a start; a running job is paused
(its Job deleted: 1.20 has no Job suspend) and made again when the intensity drops. No kubelet
here: the test writes the trainer pod's status (tests/cluster runs the real pause and resume)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from harness.intensity import IntensityServer
from model_garden.carbon.grid import ProviderConfig
from model_garden.operator.executor import Executor
from model_garden.operator.metrics import OperatorMetrics
from model_garden.operator.reconcile import (
    INDEXES,
    Context,
    Indexes,
    Owned,
    reconcile_finetunejob,
)
from model_garden.operator.runner import OperatorThread, load_client

from .test_operator import (
    API,
    Cluster,
    ProgressServer,
    finetunejob,
    in_ns,
    operator_settings,
    result_message,
    wait_for,
)

pytestmark = pytest.mark.envtest


@pytest.fixture(scope="module")
def grid_server() -> Iterator[IntensityServer]:
    server = IntensityServer(400)
    yield server
    server.close()


@pytest.fixture(scope="module")
def progress() -> Iterator[ProgressServer]:
    server = ProgressServer()
    yield server
    server.close()


def grid_provider(grid_server: IntensityServer, tmp_path: Path) -> ProviderConfig:
    """The operator's provider settings for the test's intensity server (no cache)."""
    return ProviderConfig(
        name="electricitymaps",
        url=grid_server.url,
        api_key_file=str(grid_server.token_file(tmp_path)),
        zones={"FRA": "FR"},
        cache_seconds=0,
    )


@pytest.fixture()
def scheduling_operator(
    kube_env: Any,
    crds_installed: list[str],
    grid_server: IntensityServer,
    progress: ProgressServer,
    tmp_path: Path,
) -> Iterator[tuple[Cluster, OperatorThread]]:
    provider = grid_provider(grid_server, tmp_path)
    settings = operator_settings(progress.port).model_copy(update={"grid_provider": provider})
    op = OperatorThread(load_client(kube_env.kubeconfig), settings).start()
    yield Cluster(kube_env.api_client), op
    op.stop()


def _status(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return dict((cluster.get(API, "FineTuneJob", ns, name) or {}).get("status") or {})


def _running(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return cluster.condition(cluster.get(API, "FineTuneJob", ns, name), "Running") or {}


def _started(cluster: Cluster, ns: str, g_per_kwh: float) -> dict[str, Any] | None:
    """The scheduling status once the reconcile that created the Job has patched it."""
    sched: dict[str, Any] = _status(cluster, ns, "tune").get("scheduling", {})
    return sched if sched.get("segmentIntensityGPerKwh") == g_per_kwh else None


def _job(cluster: Cluster, ns: str) -> dict[str, Any] | None:
    return cluster.get("batch/v1", "Job", ns, "tune-train")


def test_deferred_then_started_then_paused_and_resumed_as_the_intensity_changes(
    scheduling_operator: tuple[Cluster, OperatorThread],
    grid_server: IntensityServer,
    progress: ProgressServer,
) -> None:
    cluster, _ = scheduling_operator
    grid_server.g_per_kwh = 400
    ns = cluster.namespace()
    carbon = {"country": "FRA", "maxGridIntensity": 200, "pauseAboveGridIntensity": 300}
    cluster.create(in_ns(finetunejob("tune", carbon=carbon), ns))
    deferred = wait_for(
        "Deferred", lambda: _running(cluster, ns, "tune").get("reason") == "Deferred" and True
    )
    assert deferred
    condition = _running(cluster, ns, "tune")
    assert "400 g CO2e/kWh (electricitymaps:FR at " in condition["message"]
    assert "spec.carbon.maxGridIntensity (200)" in condition["message"]
    assert _job(cluster, ns) is None
    sched = _status(cluster, ns, "tune")["scheduling"]
    assert (sched["baselineGPerKwh"], sched["intensitySource"]) == (400, "electricitymaps:FR")
    seen = (
        grid_server.requests
    )  # stay deferred over two more readings (≥ 1 s: times are whole seconds)
    wait_for("two more readings", lambda: grid_server.requests >= seen + 2)
    assert _job(cluster, ns) is None

    grid_server.g_per_kwh = 100  # the grid gets cleaner: the job starts
    job = wait_for("the Job", lambda: _job(cluster, ns), timeout=20)
    uid = job["metadata"]["uid"]
    (pod,) = wait_for("its pod", lambda: cluster.pods_of(ns, "tune-train"), timeout=30)
    cluster.play_kubelet(ns, pod, "Running")
    wait_for("Running", lambda: _running(cluster, ns, "tune").get("status") == "True")
    sched = _status(cluster, ns, "tune")["scheduling"]
    assert sched["deferredSeconds"] > 0 and sched["segmentIntensityGPerKwh"] == 100

    grid_server.g_per_kwh = 500  # above the pause threshold: the Job goes, the job is Paused
    wait_for("the Job deleted", lambda: _job(cluster, ns) is None, timeout=20)
    wait_for("Paused", lambda: _running(cluster, ns, "tune").get("reason") == "Paused")
    sched = _status(cluster, ns, "tune")["scheduling"]
    assert (sched["pauses"], sched["pausedVersion"]) == (1, 1)
    assert sched["finishedSegmentsGrams"] == pytest.approx(0.001 * 100)  # progress: 0.001 kWh
    assert cluster.get("v1", "ConfigMap", ns, "tune-train-config") is None

    grid_server.g_per_kwh = 250  # below the pause threshold, still above the start one
    wait_for(
        "a fresh reading",
        lambda: _status(cluster, ns, "tune")["scheduling"]["intensityGPerKwh"] == 250,
    )
    assert _job(cluster, ns) is None

    grid_server.g_per_kwh = 100  # resumes: the same Job name, a new Job
    job = wait_for(
        "the Job made again",
        lambda: (j := _job(cluster, ns)) and j["metadata"]["uid"] != uid and j,
        timeout=30,
    )
    assert job["metadata"]["labels"]["modelgarden.dev/model-version"] == "chat-v1"
    (pod,) = wait_for("its pod", lambda: cluster.pods_of(ns, "tune-train"), timeout=30)
    # The Job is created inside the reconcile and its status patched at the end of it.
    sched = wait_for("the resumed segment", lambda: _started(cluster, ns, 100))
    assert sched["pausedSeconds"] > 0 and "pausedSince" not in sched
    reasons = [e["reason"] for e in cluster.list("v1", "Event", ns)]
    assert {"Deferred", "Paused", "Resumed"} <= set(reasons)

    # done at 0.002 kWh: avoided = (0.002 × 400 − (0.001 × 100 + 0.001 × 100)) / 1000 kg
    cluster.play_kubelet(ns, pod, "Succeeded", exit_code=0, message=result_message())
    wait_for(
        "Succeeded",
        lambda: (cluster.condition(cluster.get(API, "FineTuneJob", ns, "tune"), "Succeeded") or {}).get("status") == "True",
        timeout=30,
    )  # fmt: skip
    assert _status(cluster, ns, "tune")["scheduling"]["avoidedKg"] == pytest.approx(0.0006)


def test_the_windows_deadline_forces_the_start_whatever_the_intensity(
    scheduling_operator: tuple[Cluster, OperatorThread], grid_server: IntensityServer
) -> None:
    cluster, _ = scheduling_operator
    grid_server.g_per_kwh = 900
    ns = cluster.namespace()
    deadline = datetime.now(UTC) + timedelta(seconds=6)
    window = {"notAfter": deadline.replace(microsecond=0).isoformat().replace("+00:00", "Z")}
    carbon = {"country": "FRA", "maxGridIntensity": 100, "schedulingWindow": window}
    cluster.create(in_ns(finetunejob("tune", carbon=carbon), ns))
    wait_for("Deferred", lambda: _running(cluster, ns, "tune").get("reason") == "Deferred")
    assert "at the latest" in _running(cluster, ns, "tune")["message"]
    assert _job(cluster, ns) is None
    wait_for("the Job at the deadline", lambda: _job(cluster, ns), timeout=30)
    assert datetime.now(UTC) >= deadline
    # The Job is created inside the reconcile and the status patched at its end: wait for it.
    sched = wait_for("the started segment", lambda: _started(cluster, ns, 900))
    assert sched["intensityGPerKwh"] == 900 and sched["deferredSeconds"] >= 3


def test_a_start_planned_from_a_lagging_view_is_replanned_from_the_stored_job(
    kube_env: Any, crds_installed: list[str], grid_server: IntensityServer, tmp_path: Path
) -> None:
    """kopf's index hands the reconcile a body older than the operator's last status write. A
    paused job resumed from such a body (one that never saw the pause) lost its pause time and
    counted its run segment twice (CI saw ``pausedSeconds: 0``). The reconcile reads the job
    once before it creates the Job, and plans the start from that."""
    grid_server.g_per_kwh = 100
    provider = grid_provider(grid_server, tmp_path)
    settings = operator_settings().model_copy(update={"grid_provider": provider})
    ctx = Context(settings, Executor(kube_env.api_client), OperatorMetrics())
    cluster = Cluster(kube_env.api_client)
    ns = cluster.namespace()
    carbon = {"country": "FRA", "maxGridIntensity": 200, "pauseAboveGridIntensity": 300}
    cluster.create(in_ns(finetunejob("tune", carbon=carbon), ns))
    lagging = cluster.get(API, "FineTuneJob", ns, "tune")
    assert lagging is not None
    paused_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=60)
    when = paused_at.isoformat().replace("+00:00", "Z")
    paused = {  # what the operator's pause wrote: one segment at 100 g/kWh over 0.001 kWh
        "scheduling": {
            "baselineGPerKwh": 400,
            "firstSeen": when,
            "pauses": 1,
            "pausedSince": when,
            "pausedVersion": 1,
            "segmentStartEnergyKwh": 0.001,
            "finishedSegmentsGrams": 0.1,
        },
        "conditions": [
            {"type": "Running", "status": "False", "reason": "Paused", "message": "Paused.",
             "lastTransitionTime": when},
        ],
    }  # fmt: skip
    cluster.patch(API, "FineTuneJob", ns, "tune", {"status": paused}, sub="status")

    indexes = Indexes(**{name: {} for name in INDEXES})
    reconcile_finetunejob(ctx, Owned(lagging, {}), indexes)

    job = cluster.get("batch/v1", "Job", ns, "tune-train")
    assert job is not None, "the intensity is low: the job resumes"
    assert job["metadata"]["labels"]["modelgarden.dev/model-version"] == "chat-v1"
    sched = _status(cluster, ns, "tune")["scheduling"]
    assert sched["pausedSeconds"] >= 60 and "pausedSince" not in sched
    assert sched["finishedSegmentsGrams"] == pytest.approx(0.1)  # not counted twice
    assert sched["segmentIntensityGPerKwh"] == 100
