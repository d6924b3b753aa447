"""Kepler's measured CPU and DRAM energy in a finished FineTuneJob's carbon report.

Where the chart sets ``carbon.kepler.prometheusUrl``, the operator reads, once the trainer's Job
has finished, what Kepler attributed to its pods over the job's whole life (every attempt:
the Job's pods are named ``<job>-xxxxx`` and a resumed job recreates the same Job), and
replaces the trainer's CPU and RAM figures (CodeCarbon's, usually estimated in a pod) with it.
The GPU figure stays the trainer's own (NVML through zeus). Emissions are recomputed from the
new energy at the report's own intensity, so the report stays consistent with itself.

:func:`with_kepler` is the pure part; :func:`trainer_energy` the one query, made only for a
Job that just finished, that warns and returns None when Prometheus cannot say.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from model_garden.api import FineTuneJob
from model_garden.api.common import CarbonMethod, CarbonReport
from model_garden.api.contracts import TrainingResult
from model_garden.carbon.grid import JOULES_PER_KWH, emissions_kg
from model_garden.carbon.kepler import KeplerUnavailable, PodEnergy, job_pods, pod_energy
from model_garden.carbon.tracker import overall_method

from .. import observe
from ..settings import OperatorSettings

__all__ = ["PodEnergy", "into_result", "trainer_energy", "with_kepler"]

log = logging.getLogger(__name__)
LOOKBACK_WITHOUT_CREATION = timedelta(days=7)
"""How far back to look when the FineTuneJob carries no creationTimestamp (never in a cluster)."""


def with_kepler(
    report: CarbonReport,
    joules_by_component: Mapping[str, float],
    intensity: float | None = None,
    sources: Mapping[str, str] | None = None,
) -> CarbonReport:
    """``report`` with the components Kepler measured (``cpu``, ``ram``) replaced by its joules,
    each ``measured`` with source ``sources[component]`` (``kepler`` without one), the total
    and emissions recomputed at ``intensity`` (default: the report's own)."""
    g_per_kwh = report.grid_intensity_g_per_kwh if intensity is None else intensity
    kwh = {
        "cpu": report.cpu_energy_kwh,
        "gpu": report.gpu_energy_kwh,
        "ram": report.ram_energy_kwh,
    }
    methods = dict(report.component_methods)
    labels = dict(report.component_sources)
    for component, joules in joules_by_component.items():
        if component not in ("cpu", "ram"):
            raise ValueError(f"Kepler component {component!r}: expected cpu or ram")
        if joules < 0:
            raise ValueError(f"Kepler {component} energy {joules} J is negative")
        kwh[component] = joules / JOULES_PER_KWH
        methods[component] = CarbonMethod.MEASURED
        labels[component] = (sources or {}).get(component, "kepler")
    total = sum(kwh.values())
    return report.model_copy(
        update={
            "energy_kwh": total,
            "cpu_energy_kwh": kwh["cpu"],
            "gpu_energy_kwh": kwh["gpu"],
            "ram_energy_kwh": kwh["ram"],
            "emissions_kg": emissions_kg(total, g_per_kwh) if g_per_kwh is not None else 0.0,
            "grid_intensity_g_per_kwh": g_per_kwh,
            "method": overall_method(methods),
            "component_methods": methods,
            "component_sources": labels,
        }
    )


def into_result(result: TrainingResult, energy: PodEnergy | None) -> TrainingResult:
    """The trainer's result as the operator records it (status.carbon and the ModelVersion's
    trainingCarbon alike): Kepler's figures in when it had them."""
    if energy is None or not energy.joules:
        return result
    carbon = with_kepler(result.carbon, energy.joules, sources=energy.sources)
    return result.model_copy(update={"carbon": carbon})


def trainer_energy(
    settings: OperatorSettings, ftj: FineTuneJob, job: dict[str, Any] | None, now: datetime
) -> PodEnergy | None:
    """Kepler's joules for the job's trainer pods, once its Job has finished and before the job
    records its outcome; None when Kepler is not configured or cannot say (a warning)."""
    url = settings.carbon_kepler_prometheus_url
    if not url or job is None or observe.job_finished(job) is None:
        return None
    namespace = ftj.metadata.namespace or "default"
    start = _created(ftj) or now - LOOKBACK_WITHOUT_CREATION
    try:
        return pod_energy(
            url,
            namespace,
            job_pods(job["metadata"]["name"]),
            start.timestamp(),
            now.timestamp(),
            settings.carbon_kepler_timeout_seconds,
        )
    except (KeplerUnavailable, ValueError) as exc:
        log.warning(
            "FineTuneJob %s/%s: keeping the trainer's CPU/RAM figures: %s",
            namespace,
            ftj.metadata.name,
            exc,
        )
        return None


def _created(ftj: FineTuneJob) -> datetime | None:
    raw = (ftj.metadata.model_extra or {}).get("creationTimestamp")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
