"""CodeCarbon for the trainer: an offline tracker, cumulative figures, measured vs estimated.

CodeCarbon measures CPU energy through RAPL and GPU energy through NVML when it can read them;
otherwise it estimates (CPU from load × a TDP guess, RAM from module count). Each component's
method is reported, and the run's method is ``measured`` only if every component was measured.
Emissions use the grid intensity from :mod:`model_garden.carbon.grid` (CodeCarbon's own data),
so the live counters and the final report agree. A resumed run adds its figures to the totals
carried in the checkpoint.

A run's energy covers all of its time, however short: CodeCarbon only adds energy when it
samples (every ``measure_power_secs`` and once at ``stop``), so between samples the figure is
completed with the last sampled power × the time since; and a run CodeCarbon never measured
(e.g. it could not start its sampler) is estimated from CodeCarbon's own fallback powers ×
its wall time. A report never says zero for a run that ran.

GPU energy comes from the boards' own counters through zeus (carbon/measure_gpu.py) when zeus
and a GPU are there: it replaces CodeCarbon's GPU figure, which integrates sampled power.
CodeCarbon stays for CPU and RAM: it reads RAPL where it can and otherwise estimates from its
database of CPU TDPs, while zeus's CPU support is RAPL only (usually root-only in a pod) with
no estimate to fall back on. Each component's source says which it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from model_garden.api.common import CarbonMethod, CarbonReport

from .grid import JOULES_PER_KWH, emissions_kg, grid_intensity
from .measure_gpu import GpuEnergyMeter, open_gpu_meter

MEASURED_CPU_MODES = {"intel_rapl", "intel_power_gadget", "apple_powermetrics", "amd_rapl"}
CPU_MODE_SOURCES = {
    "intel_rapl": "rapl (codecarbon)",
    "amd_rapl": "rapl (codecarbon)",
    "intel_power_gadget": "intel power gadget (codecarbon)",
    "apple_powermetrics": "powermetrics (codecarbon)",
    "windows_emi": "windows energy meter (codecarbon)",
}
RAM_SOURCE = "codecarbon ram model"
FALLBACK_SOURCE = "codecarbon fallback power (never sampled)"


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

    def at_least(self, other: EnergySplit) -> EnergySplit:
        """Per component, the larger of the two: cumulative figures never go down."""
        return EnergySplit(
            max(self.cpu_kwh, other.cpu_kwh),
            max(self.gpu_kwh, other.gpu_kwh),
            max(self.ram_kwh, other.ram_kwh),
        )


@dataclass(frozen=True)
class PowerSplit:
    """Watts per component, as last sampled by CodeCarbon."""

    cpu_w: float = 0.0
    gpu_w: float = 0.0
    ram_w: float = 0.0

    @property
    def total_w(self) -> float:
        return self.cpu_w + self.gpu_w + self.ram_w

    def over(self, seconds: float) -> EnergySplit:
        """The energy drawn at this power for ``seconds``."""
        s = max(0.0, seconds) / JOULES_PER_KWH
        return EnergySplit(self.cpu_w * s, self.gpu_w * s, self.ram_w * s)


FALLBACK_POWER = PowerSplit(cpu_w=8.5, gpu_w=0.0, ram_w=10.0)
"""What CodeCarbon itself assumes with nothing to read: its constant CPU TDP (85 W) at its idle
floor of 10 %, and its minimum RAM power (two 5 W modules). Used only for a run it never
sampled, and the report then says ``estimated``."""


def whole_run_energy(
    sampled: EnergySplit, power: PowerSplit, unsampled_s: float, elapsed_s: float
) -> tuple[EnergySplit, bool]:
    """(energy over the whole run, whether the fallback power was used).

    ``sampled`` is CodeCarbon's integral up to its last sample, ``unsampled_s`` the time since
    that sample (drawn at the last sampled ``power``). If that still adds up to nothing for a
    run that lasted ``elapsed_s`` > 0, the run is estimated at :data:`FALLBACK_POWER`.
    """
    energy = sampled + power.over(unsampled_s)
    if energy.total_kwh > 0 or elapsed_s <= 0:
        return energy, False
    return FALLBACK_POWER.over(elapsed_s), True


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


def component_sources(hardware: list[Any]) -> dict[str, str]:
    """cpu/gpu/ram -> how CodeCarbon obtains each figure, from its hardware objects."""
    sources: dict[str, str] = {}
    for h in hardware:
        kind = type(h).__name__.lower()
        if kind == "cpu":
            mode = str(getattr(h, "_mode", "") or "tdp")
            sources["cpu"] = CPU_MODE_SOURCES.get(mode, f"codecarbon cpu model ({mode})")
        elif kind in ("gpu", "allgpudevices"):
            sources["gpu"] = "nvml (codecarbon)"
        elif kind == "ram":
            sources["ram"] = RAM_SOURCE
    return sources


def overall_method(methods: dict[str, CarbonMethod]) -> CarbonMethod:
    if methods and all(m == CarbonMethod.MEASURED for m in methods.values()):
        return CarbonMethod.MEASURED
    return CarbonMethod.ESTIMATED


def build_report(
    energy: EnergySplit,
    country: str | None,
    region: str | None,
    methods: dict[str, CarbonMethod],
    overrides: Mapping[str, float] | None = None,
    sources: Mapping[str, str] | None = None,
) -> CarbonReport:
    grid = grid_intensity(country, region, overrides)
    return CarbonReport(
        energy_kwh=energy.total_kwh,
        cpu_energy_kwh=energy.cpu_kwh,
        gpu_energy_kwh=energy.gpu_kwh,
        ram_energy_kwh=energy.ram_kwh,
        emissions_kg=emissions_kg(energy.total_kwh, grid.g_per_kwh),
        grid_intensity_g_per_kwh=grid.g_per_kwh,
        country=grid.country,
        region=grid.region or region,
        grid_source=grid.source,
        grid_time=grid.time,
        method=overall_method(methods),
        component_methods=methods,
        component_sources=dict(sources or {}),
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
        grid_overrides: Mapping[str, float] | None = None,
        gpu: Callable[[], tuple[GpuEnergyMeter | None, str]] = open_gpu_meter,
    ) -> None:
        self.country = (country or "USA").upper()
        self._open_gpu = gpu
        self._gpu: GpuEnergyMeter | None = None
        """zeus's reading of the GPUs' counters, when there are GPUs: it replaces CodeCarbon's."""
        self._sources: dict[str, str] = {}
        self.region = region
        self.grid_overrides = dict(grid_overrides or {})
        self.previous = previous or EnergySplit()
        self.measure_power_secs = measure_power_secs
        self.project = project
        self._tracker: Any = None
        self._methods: dict[str, CarbonMethod] = {}
        self._lock = threading.Lock()
        self._final: EnergySplit | None = None
        self._started: float | None = None
        self._fallback = False
        self._reported = EnergySplit()
        """The highest figure reported so far: an extrapolated tail (last sampled power x time
        since) may exceed what CodeCarbon's next sample integrates, and a cumulative figure
        (a Prometheus counter, the job's status) must never go down."""

    def start(self) -> None:
        from codecarbon import OfflineEmissionsTracker

        self._started = time.perf_counter()
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
        hardware = list(getattr(self._tracker, "_hardware", []))
        self._methods = component_methods(hardware)
        self._sources = component_sources(hardware)
        self._gpu, why = self._open_gpu()
        if self._gpu is not None:
            self._methods["gpu"] = CarbonMethod.MEASURED
            self._sources["gpu"] = self._gpu.source
        elif "gpu" in self._sources:
            self._sources["gpu"] += f"; zeus: {why}"

    def _sampled(self) -> tuple[EnergySplit, PowerSplit, float]:
        """CodeCarbon's totals, its last sampled powers, and seconds since that sample."""
        t = self._tracker
        sampled = EnergySplit(
            float(t._total_cpu_energy.kWh),
            float(t._total_gpu_energy.kWh),
            float(t._total_ram_energy.kWh),
        )
        power = PowerSplit(
            _watts(getattr(t, "_cpu_power", None)),
            _watts(getattr(t, "_gpu_power", None)),
            _watts(getattr(t, "_ram_power", None)),
        )
        last = getattr(t, "_last_measured_time", None)
        since = time.perf_counter() - last if isinstance(last, float) else 0.0
        return sampled, power, since

    def _this_run(self) -> EnergySplit:
        if self._final is not None:
            return self._final
        if self._tracker is None or self._started is None:
            return EnergySplit()
        sampled, power, since = self._sampled()
        energy, self._fallback = whole_run_energy(
            sampled, power, since, time.perf_counter() - self._started
        )
        if self._gpu is not None:
            energy.gpu_kwh = self._gpu.joules() / JOULES_PER_KWH
        self._reported = energy.at_least(self._reported)
        return self._reported

    def energy(self) -> EnergySplit:
        """Cumulative energy: earlier attempts (from the checkpoint) + this process up to now."""
        with self._lock:
            return self.previous + self._this_run()

    def report(self) -> CarbonReport:
        return build_report(
            self.energy(),
            self.country,
            self.region,
            self.methods,
            self.grid_overrides,
            self.sources,
        )

    @property
    def methods(self) -> dict[str, CarbonMethod]:
        if self._fallback:
            methods = dict.fromkeys(self._methods or ("cpu", "ram"), CarbonMethod.ESTIMATED)
            if self._gpu is not None:  # zeus read the GPU whatever CodeCarbon did
                methods["gpu"] = CarbonMethod.MEASURED
            return methods
        return dict(self._methods) or {"cpu": CarbonMethod.ESTIMATED, "ram": CarbonMethod.ESTIMATED}

    @property
    def sources(self) -> dict[str, str]:
        """component -> how its figure was obtained (CarbonReport.component_sources)."""
        if self._fallback:
            sources = dict.fromkeys(self._methods or ("cpu", "ram"), FALLBACK_SOURCE)
            if self._gpu is not None:
                sources["gpu"] = self._gpu.source
            return sources
        return dict(self._sources) or {"cpu": FALLBACK_SOURCE, "ram": FALLBACK_SOURCE}

    def stop(self) -> CarbonReport:
        """Take CodeCarbon's last sample and freeze the figure (idempotent: later calls and
        ``report()`` return the same report)."""
        if self._tracker is not None and self._final is None:
            self._tracker.stop()  # samples once more: the tail since its last sample
            with self._lock:
                self._final = self._this_run()
        return self.report()


def _watts(power: Any) -> float:
    """Watts of a CodeCarbon ``Power`` (kW inside), 0 when there is none yet."""
    kw = getattr(power, "kW", None)
    return float(kw) * 1000.0 if isinstance(kw, int | float) else 0.0
