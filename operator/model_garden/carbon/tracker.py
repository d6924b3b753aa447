"""CodeCarbon for the trainer: an offline tracker, cumulative figures, measured vs estimated.

CodeCarbon measures CPU energy through RAPL and GPU energy through NVML when it can read them;
otherwise it estimates (CPU from load × a TDP guess, RAM from module count). Each component's
method is reported, and the run's method is ``measured`` only if every component was measured.
Emissions use the grid intensity from :mod:`model_garden.carbon.grid` (CodeCarbon's own data),
so the live counters and the final report agree. A resumed run adds its figures to the totals
carried in the checkpoint.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from model_garden.api.common import CarbonMethod, CarbonReport

from .grid import emissions_kg, grid_intensity

MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "apple_powermetrics", "amd_rapl"}


@dataclass
class EnergySplit:
    cpu_kwh: float = 0.0
    gpu_kwh: float = 0.0
    ram_kwh: float = 0.0

    @property
    def total_kwh(self) -> float:
        return self.cpu_kwh + self.gpu_kwh + self.ram_kwh

    def __add__(self, other: EnergySplit) -> EnergySplit:
        return EnergySplit(
            self.cpu_kwh + other.cpu_kwh, self.gpu_kwh + other.gpu_kwh, self.ram_kwh + other.ram_kwh
        )


def component_methods(hardware: list[Any]) -> dict[str, CarbonMethod]:
    """cpu/gpu/ram -> measured or estimated, from CodeCarbon's hardware objects."""
    methods: dict[str, CarbonMethod] = {}
    for h in hardware:
        kind = type(h).__name__.lower()
        if kind == "cpu":
            mode = str(getattr(h, "_mode", ""))
            methods["cpu"] = (
                CarbonMethod.MEASURED if mode in MEASURED_CPU_MODES else CarbonMethod.ESTIMATED
            )
        elif kind in ("gpu", "allgpudevices"):
            methods["gpu"] = CarbonMethod.MEASURED  # NVML / ROCm SMI read the board's counter
        elif kind == "ram":
            methods["ram"] = CarbonMethod.ESTIMATED  # no counter: a per-module power model
    return methods


def overall_method(methods: dict[str, CarbonMethod]) -> CarbonMethod:
    if methods and all(m == CarbonMethod.MEASURED for m in methods.values()):
        return CarbonMethod.MEASURED
    return CarbonMethod.ESTIMATED


def build_report(
    energy: EnergySplit,
    country: str | None,
    region: str | None,
    methods: dict[str, CarbonMethod],
) -> CarbonReport:
    grid = grid_intensity(country, region)
    return CarbonReport(
        energy_kwh=energy.total_kwh,
        cpu_energy_kwh=energy.cpu_kwh,
        gpu_energy_kwh=energy.gpu_kwh,
        ram_energy_kwh=energy.ram_kwh,
        emissions_kg=emissions_kg(energy.total_kwh, grid.g_per_kwh),
        grid_intensity_g_per_kwh=grid.g_per_kwh,
        country=grid.country,
        region=region,
        method=overall_method(methods),
        component_methods=methods,
    )


class TrainingCarbonTracker:
    """Wraps ``OfflineEmissionsTracker``; ``report()`` is cheap and safe from any thread."""

    def __init__(
        self,
        country: str | None,
        region: str | None = None,
        previous: EnergySplit | None = None,
        measure_power_secs: float = 1.0,
        project: str = "model-garden-training",
    ) -> None:
        self.country = (country or "USA").upper()
        self.region = region
        self.previous = previous or EnergySplit()
        self.measure_power_secs = measure_power_secs
        self.project = project
        self._tracker: Any = None
        self._methods: dict[str, CarbonMethod] = {}
        self._lock = threading.Lock()
        self._final: EnergySplit | None = None

    def start(self) -> None:
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        kwargs: dict[str, Any] = {
            "country_iso_code": self.country,
            "measure_power_secs": self.measure_power_secs,
            "save_to_file": False,
            "log_level": "error",
            "project_name": self.project,
            "tracking_mode": "process",
            "allow_multiple_runs": True,
        }
        if self.region:
            kwargs["region"] = self.region
        try:
            self._tracker = OfflineEmissionsTracker(**kwargs)
        except TypeError:  # older CodeCarbon without allow_multiple_runs
            kwargs.pop("allow_multiple_runs")
            self._tracker = OfflineEmissionsTracker(**kwargs)
        self._tracker.start()
        self._methods = component_methods(list(getattr(self._tracker, "_hardware", [])))

    def _this_run(self) -> EnergySplit:
        if self._final is not None:
            return self._final
        t = self._tracker
        if t is None:
            return EnergySplit()
        return EnergySplit(
            float(t._total_cpu_energy.kWh),
            float(t._total_gpu_energy.kWh),
            float(t._total_ram_energy.kWh),
        )

    def energy(self) -> EnergySplit:
        """Cumulative energy: earlier attempts (from the checkpoint) + this process so far."""
        with self._lock:
            return self.previous + self._this_run()

    def report(self) -> CarbonReport:
        return build_report(self.energy(), self.country, self.region, self.methods)

    @property
    def methods(self) -> dict[str, CarbonMethod]:
        return dict(self._methods) or {"cpu": CarbonMethod.ESTIMATED, "ram": CarbonMethod.ESTIMATED}

    def stop(self) -> CarbonReport:
        if self._tracker is not None and self._final is None:
            self._tracker.stop()
            with self._lock:
                t = self._tracker
                self._final = EnergySplit(
                    float(t._total_cpu_energy.kWh),
                    float(t._total_gpu_energy.kWh),
                    float(t._total_ram_energy.kWh),
                )
        return self.report()
