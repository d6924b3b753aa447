"""Carbon-aware scheduling of a FineTuneJob: when it may start, when it pauses, what it saved.

Pure: the handler reads the grid's intensity (the operator's live provider, else the tables)
and this module decides. A job with ``spec.carbon.schedulingWindow`` waits for ``notBefore``; one
with ``maxGridIntensity`` waits (``Deferred``) while the intensity is above it, until the
window's ``notAfter`` (or the operator's ``maxDeferralSeconds`` after creation) forces the start.
A running job with ``pauseAboveGridIntensity`` is paused while the intensity is above it:
Kubernetes 1.20 has no Job ``suspend``, so a pause deletes the Job (its pod gets SIGTERM, on
which the trainer writes a checkpoint) and a resumption makes it again, which resumes from that
checkpoint (the run key leaves out what a pause changes). A job pauses for at most the
operator's ``maxPauseSeconds`` in all, so a grid that stays dirty cannot hold it forever.

Emissions avoided compare with starting at once, at the intensity seen first: the run's energy
× that baseline − Σ each run segment's energy × the intensity when the segment (re)started. A
segment's intensity is the one at its start, not a profile over its length: the figure is an
estimate and the status says which intensities it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from model_garden.api import FineTuneJob
from model_garden.api.finetunejob import SchedulingStatus


@dataclass(frozen=True)
class GridNow:
    """The grid's intensity as the handler read it for the job's place."""

    g_per_kwh: float
    source: str
    time: str | None = None

    def describe(self) -> str:
        when = f" at {self.time}" if self.time else ""
        return f"{self.g_per_kwh:.4g} g CO2e/kWh ({self.source}{when})"


@dataclass(frozen=True)
class Hold:
    """Why the job does not start (or resume) now: a ``Running`` reason and message."""

    reason: str
    message: str


def seen(current: SchedulingStatus | None, grid: GridNow | None, now: datetime) -> SchedulingStatus:
    """The status with the latest reading; the first reading becomes the baseline."""
    status = current.model_copy() if current is not None else SchedulingStatus()
    if status.first_seen is None:
        status.first_seen = now
    if grid is not None:
        status.intensity_g_per_kwh = grid.g_per_kwh
        status.intensity_source = grid.source
        status.intensity_time = grid.time
        if status.baseline_g_per_kwh is None:
            status.baseline_g_per_kwh = grid.g_per_kwh
    return status


def deadline(ftj: FineTuneJob, first_seen: datetime, max_deferral_s: float) -> datetime:
    """When a deferred start is forced: the window's ``notAfter``, else the operator's cap
    after the job was first seen."""
    window = ftj.spec.carbon.scheduling_window
    if window is not None and window.not_after is not None:
        return window.not_after
    return first_seen + timedelta(seconds=max_deferral_s)


def start_hold(
    ftj: FineTuneJob,
    status: SchedulingStatus,
    grid: GridNow | None,
    now: datetime,
    max_deferral_s: float,
) -> Hold | None:
    """What holds the first start back, or None: the window's ``notBefore``, then an
    intensity above ``maxGridIntensity`` until the deadline."""
    carbon = ftj.spec.carbon
    window = carbon.scheduling_window
    if window is not None and window.not_before is not None and now < window.not_before:
        return Hold(
            "Deferred",
            f"Waiting for spec.carbon.schedulingWindow.notBefore ({_iso(window.not_before)}).",
        )
    limit = carbon.max_grid_intensity
    if limit is None or grid is None or grid.g_per_kwh <= limit:
        return None
    by = deadline(ftj, status.first_seen or now, max_deferral_s)
    if now >= by:
        return None
    return Hold(
        "Deferred",
        f"The grid's intensity is {grid.describe()}, above spec.carbon.maxGridIntensity"
        f" ({limit:g}); the job starts once it drops, or at {_iso(by)} at the latest.",
    )


def resume_hold(
    ftj: FineTuneJob, status: SchedulingStatus, grid: GridNow | None, now: datetime,
    max_pause_s: float,
) -> Hold | None:  # fmt: skip
    """What keeps a paused job paused, or None: the intensity still above the resumption
    threshold (``maxGridIntensity``, else ``pauseAboveGridIntensity``), within the pause cap."""
    carbon = ftj.spec.carbon
    limit = carbon.max_grid_intensity
    if limit is None:
        limit = carbon.pause_above_grid_intensity
    if limit is None or grid is None or grid.g_per_kwh <= limit:
        return None
    if status.paused_seconds + _since(status.paused_since, now) >= max_pause_s:
        return None
    return Hold(
        "Paused",
        f"Paused at a checkpoint: the grid's intensity is {grid.describe()}, above {limit:g};"
        " the job resumes from its checkpoint once it drops (or once it has been paused"
        f" {max_pause_s:g} s in all).",
    )


def should_pause(
    ftj: FineTuneJob, status: SchedulingStatus, grid: GridNow | None, max_pause_s: float
) -> bool:
    """A running job pauses while the intensity is above ``pauseAboveGridIntensity``, unless
    its pauses have used the operator's cap."""
    limit = ftj.spec.carbon.pause_above_grid_intensity
    if limit is None or grid is None or grid.g_per_kwh <= limit:
        return False
    return status.paused_seconds < max_pause_s


def started(
    status: SchedulingStatus, grid: GridNow | None, energy_kwh: float, now: datetime
) -> SchedulingStatus:
    """The status once the Job is (re)created: the time shifted, a new run segment."""
    new = _close_segment(status, energy_kwh)  # a budget-stopped run's segment, if any
    if new.paused_since is not None:
        new.paused_seconds += _since(new.paused_since, now)
        new.paused_since = None
        new.paused_version = None
    elif new.first_seen is not None and status.segment_intensity_g_per_kwh is None:
        new.deferred_seconds = _since(new.first_seen, now)
    new.segment_intensity_g_per_kwh = grid.g_per_kwh if grid is not None else None
    new.segment_start_energy_kwh = energy_kwh
    return _with_avoided(new, energy_kwh)


def paused(
    status: SchedulingStatus, energy_kwh: float, version: int | None, now: datetime
) -> SchedulingStatus:
    """The status once a running job is paused: its segment closed at ``energy_kwh``."""
    new = _close_segment(status, energy_kwh)
    new.pauses += 1
    new.paused_since = now
    new.paused_version = version
    return _with_avoided(new, energy_kwh)


def running(status: SchedulingStatus, energy_kwh: float) -> SchedulingStatus:
    """The avoided emissions so far, for a running or finished job's energy."""
    return _with_avoided(status.model_copy(), energy_kwh)


def avoided_kg(status: SchedulingStatus, energy_kwh: float) -> float | None:
    """energy × baseline − (Σ closed segments + the open segment) at their intensities, kg."""
    baseline = status.baseline_g_per_kwh
    if baseline is None:
        return None
    grams = status.finished_segments_grams
    if status.segment_intensity_g_per_kwh is not None and status.paused_since is None:
        segment_kwh = max(0.0, energy_kwh - status.segment_start_energy_kwh)
        grams += segment_kwh * status.segment_intensity_g_per_kwh
    baseline_grams = energy_kwh * baseline
    difference = baseline_grams - grams
    # Segments summed one by one round differently from one product: a run at the baseline
    # intensity throughout must read exactly zero, not 1e-21 kg.
    if abs(difference) <= 1e-9 * max(abs(baseline_grams), abs(grams)):
        difference = 0.0
    return difference / 1000.0


def trainer_left(pods: list[dict[str, object]]) -> bool:
    """A pod of the job is still there (a paused trainer checkpointing, or not yet removed with
    its Job): a new Job waits for it to go, so two trainers never write the same checkpoints
    and an old pod's exit is never read as the new attempt's."""
    return bool(pods)


def _close_segment(status: SchedulingStatus, energy_kwh: float) -> SchedulingStatus:
    new = status.model_copy()
    if new.segment_intensity_g_per_kwh is not None:
        segment_kwh = max(0.0, energy_kwh - new.segment_start_energy_kwh)
        new.finished_segments_grams += segment_kwh * new.segment_intensity_g_per_kwh
    new.segment_intensity_g_per_kwh = None
    new.segment_start_energy_kwh = energy_kwh
    return new


def _with_avoided(status: SchedulingStatus, energy_kwh: float) -> SchedulingStatus:
    value = avoided_kg(status, energy_kwh)
    status.avoided_kg = None if value is None else float(f"{value:.6g}")
    return status


def _since(then: datetime | None, now: datetime) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
