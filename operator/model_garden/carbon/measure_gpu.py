"""GPU energy through zeus (ML.ENERGY's measurement library): the board's own energy counter.

Why zeus and not our own NVML calls: it hides the vendor (NVML on NVIDIA, AMD SMI on AMD),
honours ``CUDA_VISIBLE_DEVICES`` (a pod counts its GPUs, not the node's), refuses MIG slices
it cannot measure, and is maintained against new drivers. We use only its device layer
(``zeus.device.get_gpus()``), which imports in ~0.2 s and pulls none of zeus's heavier
dependencies; ``ZeusMonitor`` measures named windows in-process, while the meter and the
trainer need one cumulative counter read from any thread, which the device layer gives.

The import is lazy and optional: without zeus, without a driver or without a GPU,
:func:`open_gpus` says why and the callers keep their estimate, labelled so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


class ZeusGpus(Protocol):
    """What we use of zeus's ``GPUs`` object (``zeus.device.gpu.common.GPUs``, zeus 0.16)."""

    def __len__(self) -> int: ...

    def supports_get_total_energy_consumption(self, gpu_index: int) -> bool: ...

    def get_total_energy_consumption(self, gpu_index: int) -> int:
        """Millijoules since the driver loaded."""
        ...

    def get_average_power_usage(self, gpu_index: int) -> int:
        """Milliwatts, averaged by the driver over about a second."""
        ...


@dataclass(frozen=True)
class GpuProbe:
    """The GPUs zeus found and the label of their figures, or why there are none."""

    gpus: ZeusGpus | None
    source: str
    reason: str = ""


def zeus_version() -> str | None:
    try:
        import zeus
    except ImportError:
        return None
    return str(getattr(zeus, "__version__", "?"))


def open_gpus() -> GpuProbe:
    """zeus's GPUs of this process (``CUDA_VISIBLE_DEVICES`` applies), or the reason why not."""
    version = zeus_version()
    if version is None:
        return GpuProbe(None, "", "zeus is not installed")
    try:
        from zeus.device import get_gpus

        gpus = get_gpus()
    except Exception as exc:  # zeus raises ZeusGPUInitError and friends: no driver, no GPU
        return GpuProbe(None, "", f"no GPU: {type(exc).__name__}: {exc}")
    if len(gpus) == 0:
        return GpuProbe(None, "", "no GPU visible to this process")
    backend = "amdsmi" if "amd" in type(gpus).__name__.lower() else "nvml"
    return GpuProbe(gpus, f"{backend} (zeus {version})")


class GpuEnergyMeter:
    """Cumulative joules of the GPUs since this meter was created; safe from any thread.

    A GPU with an energy counter (NVIDIA Volta and later, AMD MI) is read as the difference
    of its counter; one without (older boards) by the driver's average power times the time
    since the last read, and the source then says ``power samples``. A counter that goes
    back (the driver was reloaded) restarts from zero and the new value is added. A failed
    read keeps the total where it was: the next good read of a counter catches up.
    """

    def __init__(
        self, gpus: ZeusGpus, source: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.gpus = gpus
        self.clock = clock
        self._lock = threading.Lock()
        count = len(gpus)
        self._counters = [gpus.supports_get_total_energy_consumption(i) for i in range(count)]
        self._last_mj: list[int | None] = [
            gpus.get_total_energy_consumption(i) if counted else None
            for i, counted in enumerate(self._counters)
        ]
        self._last_t = clock()
        self._joules = 0.0
        self._failed = False
        self.source = source if all(self._counters) else f"{source}, power samples"

    def joules(self) -> float:
        with self._lock:
            now = self.clock()
            try:
                for i, counted in enumerate(self._counters):
                    self._joules += self._read(i, counted, now - self._last_t)
            except Exception as exc:  # a lost GPU must not stop training or serving
                if not self._failed:
                    log.warning("reading GPU energy failed (%s); keeping the last figure", exc)
                self._failed = True
            self._last_t = now
            return self._joules

    def _read(self, index: int, counted: bool, seconds: float) -> float:
        if not counted:
            return self.gpus.get_average_power_usage(index) / 1000.0 * max(0.0, seconds)
        value = self.gpus.get_total_energy_consumption(index)
        last = self._last_mj[index]
        self._last_mj[index] = value
        if last is None:
            return 0.0
        delta = value - last if value >= last else value  # reloaded driver: counts from 0
        return delta / 1000.0


def open_gpu_meter() -> tuple[GpuEnergyMeter | None, str]:
    """A meter over zeus's GPUs, or (None, why not) for the caller's label."""
    probe = open_gpus()
    if probe.gpus is None:
        return None, probe.reason
    try:
        return GpuEnergyMeter(probe.gpus, probe.source), ""
    except Exception as exc:  # e.g. NVML refuses the first read
        return None, f"GPU energy unreadable: {type(exc).__name__}: {exc}"
