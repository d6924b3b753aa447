"""Where the meter's joules come from: NVML (GPU), RAPL (CPU, where readable), else an estimate.

Each source is a cumulative joule counter per component (``gpu``, ``cpu``, ``ram``) with a
method. The estimate follows CodeCarbon's model for a CPU it does not know and no RAPL: a fixed
power per busy thread (so energy is proportional to CPU-seconds) and a RAM power from the memory
size by its DIMM-count model, applied to the served process tree (the pod) rather than to the
whole machine. No CodeCarbon import: its tracker costs seconds to start and samples the machine.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model_garden.api.common import CarbonMethod

WATTS_PER_BUSY_THREAD = 4.0
"""CodeCarbon's default CPU power per thread when it cannot identify the CPU (TOOLCHAIN.md)."""
RAM_WATTS_PER_DIMM = 5.0
"""CodeCarbon's x86 power per DIMM (codecarbon/external/ram.py: RAM_SLOT_POWER_X86)."""
RAPL_ROOT = Path("/sys/class/powercap")
PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ComponentEnergy:
    joules: float
    method: CarbonMethod


Reading = dict[str, ComponentEnergy]
"""component (``gpu``, ``cpu``, ``ram``) -> cumulative joules since the source started."""


def ram_watts(memory_gb: float) -> float:
    """CodeCarbon's RAM power model (x86): DIMMs guessed from the size, less power per DIMM at scale."""
    if memory_gb <= 16:
        dimms = 2
    elif memory_gb <= 64:
        dimms = 4
    elif memory_gb <= 128:
        dimms = 8
    else:
        dimms = min(32, max(8, math.ceil(memory_gb / 64)))
    power = RAM_WATTS_PER_DIMM
    if dimms <= 4:
        total = power * dimms
    elif dimms <= 8:
        total = power * 4 + power * 0.9 * (dimms - 4)
    elif dimms <= 16:
        total = power * 4 + power * 0.9 * 4 + power * 0.8 * (dimms - 8)
    else:
        total = power * 4 + power * 0.9 * 4 + power * 0.8 * 8 + power * 0.7 * (dimms - 16)
    return max(power * 2, total)


class ProcessTree:
    """CPU-seconds and resident memory of a process and all its descendants, from /proc.

    The tree is rediscovered every ``rescan_s`` (walking /proc is the costly part); in between
    only the known processes are read. CPU time of descendants that exited and were reaped is
    kept through their parent's ``cutime``/``cstime``.
    """

    def __init__(self, root_pid: int, rescan_s: float = 10.0, proc: Path = PROC) -> None:
        self.root_pid = root_pid
        self.rescan_s = rescan_s
        self.proc = proc
        self._pids: list[int] = []
        self._scanned_at = -math.inf
        self._last_cpu = 0.0

    def _stat(self, pid: int) -> list[str] | None:
        try:
            text = (self.proc / str(pid) / "stat").read_text()
        except OSError:
            return None
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        return text[text.rfind(")") + 2 :].split()

    def _rescan(self) -> None:
        children: dict[int, list[int]] = {}
        for entry in self.proc.iterdir():
            if not entry.name.isdigit():
                continue
            fields = self._stat(int(entry.name))
            if fields is None:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        pids, stack = [], [self.root_pid]
        while stack:
            pid = stack.pop()
            pids.append(pid)
            stack.extend(children.get(pid, []))
        self._pids = pids
        self._scanned_at = time.monotonic()

    def sample(self) -> tuple[float, float]:
        """(cumulative CPU-seconds, resident GB) of the tree; CPU time never goes backwards."""
        if time.monotonic() - self._scanned_at >= self.rescan_s:
            self._rescan()
        ticks = 0
        rss_pages = 0
        for pid in self._pids:
            fields = self._stat(pid)
            if fields is None:
                continue
            # After the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17) ... rss(24)
            ticks += sum(int(f) for f in fields[11:15])
            rss_pages += int(fields[21])
        cpu = max(self._last_cpu, ticks / CLOCK_TICKS)
        self._last_cpu = cpu
        return cpu, rss_pages * PAGE_SIZE / 1e9

    def alive(self) -> bool:
        return (self.proc / str(self.root_pid)).exists()


class MachineCpu:
    """CPU-seconds of a cgroup (a pod's container) or, failing that, the whole machine."""

    def __init__(self, cgroup: Path = Path("/sys/fs/cgroup/cpu.stat")) -> None:
        self.cgroup = cgroup if cgroup.exists() else None

    def sample(self) -> tuple[float, float]:
        if self.cgroup is not None:
            for line in self.cgroup.read_text().splitlines():
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6, _meminfo_used_gb()
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # minus idle, iowait
        return busy / CLOCK_TICKS, _meminfo_used_gb()


def _meminfo_used_gb() -> float:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, value = line.partition(":")
        info[key] = int(value.split()[0]) * 1024
    return (info.get("MemTotal", 0) - info.get("MemAvailable", 0)) / 1e9


class EstimatedHost:
    """CPU + RAM joules estimated from CPU-seconds and resident memory (CodeCarbon's model)."""

    def __init__(self, sampler: Callable[[], tuple[float, float]]) -> None:
        self.sampler = sampler
        self._cpu0: float | None = None
        self._ram_j = 0.0
        self._last_t: float | None = None

    def read(self) -> Reading:
        cpu_s, rss_gb = self.sampler()
        now = time.monotonic()
        if self._cpu0 is None:
            self._cpu0 = cpu_s
        if self._last_t is not None:
            self._ram_j += ram_watts(rss_gb) * (now - self._last_t)
        self._last_t = now
        return {
            "cpu": ComponentEnergy(
                (cpu_s - self._cpu0) * WATTS_PER_BUSY_THREAD, CarbonMethod.ESTIMATED
            ),
            "ram": ComponentEnergy(self._ram_j, CarbonMethod.ESTIMATED),
        }


def rapl_domains(root: Path = RAPL_ROOT) -> list[Path]:
    """Top-level RAPL package domains whose counter this process can read (root only, usually)."""
    domains = []
    for path in sorted(root.glob("intel-rapl:*")):
        if path.name.count(":") != 1:
            continue  # sub-domains (core, uncore, dram) are inside the package's figure
        try:
            int((path / "energy_uj").read_text())
        except (OSError, ValueError):
            continue
        domains.append(path)
    return domains


class RaplCpu:
    """Package energy from RAPL counters (machine-wide: the node's CPU sockets), wrap-safe."""

    def __init__(self, domains: list[Path]) -> None:
        self.domains = domains
        self._last: dict[Path, int] = {}
        self._joules = 0.0

    def read(self) -> Reading:
        for path in self.domains:
            value = int((path / "energy_uj").read_text())
            last = self._last.get(path)
            if last is not None:
                delta = value - last
                if delta < 0:  # the counter wrapped
                    delta += int((path / "max_energy_range_uj").read_text())
                self._joules += delta / 1e6
            self._last[path] = value
        return {"cpu": ComponentEnergy(self._joules, CarbonMethod.MEASURED)}


class NvmlGpu:
    """Total energy of the visible GPUs from NVML (millijoules since the driver loaded)."""

    def __init__(self) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self.handles = [
            pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
        ]
        self._start = self._total_mj()

    def _total_mj(self) -> float:
        return float(sum(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles))

    def read(self) -> Reading:
        return {
            "gpu": ComponentEnergy((self._total_mj() - self._start) / 1000.0, CarbonMethod.MEASURED)
        }


class EnergySource:
    """The pod's energy from the best sources available, and which of them are measured.

    ``method`` is ``measured`` when the component that does the serving work is measured: the GPU
    (NVML) on a GPU pod, the CPU (RAPL) on a CPU pod. The other components are still counted, and
    each component's own method is exported.
    """

    def __init__(self, parts: list[EstimatedHost | RaplCpu | NvmlGpu], primary: str) -> None:
        self.parts = parts
        self.primary = primary

    def read(self) -> Reading:
        reading: Reading = {}
        for part in self.parts:
            for component, energy in part.read().items():
                reading.setdefault(component, energy)
        return reading

    def method(self, reading: Reading) -> CarbonMethod:
        primary = reading.get(self.primary)
        if primary is not None and primary.method == CarbonMethod.MEASURED:
            return CarbonMethod.MEASURED
        return CarbonMethod.ESTIMATED


def open_energy_source(kind: str = "auto", pid: int | None = None) -> EnergySource:
    """``auto``: NVML when a GPU answers, RAPL when readable, the estimate for what is left.

    ``pid`` scopes the estimate to that process tree (the launcher passes its own pid, so the
    pod's vLLM and meter are counted and a neighbour's work is not); without it, the cgroup.
    """
    host = EstimatedHost(ProcessTree(pid).sample if pid else MachineCpu().sample)
    parts: list[EstimatedHost | RaplCpu | NvmlGpu] = []
    primary = "cpu"
    if kind in ("auto", "nvml"):
        try:
            parts.append(NvmlGpu())
            primary = "gpu"
        except Exception:  # no pynvml, no driver or no GPU: not an error on a CPU pod
            if kind == "nvml":
                raise
    if kind in ("auto", "rapl"):
        domains = rapl_domains()
        if domains:
            parts.append(RaplCpu(domains))
        elif kind == "rapl":
            raise RuntimeError(f"no readable RAPL counter under {RAPL_ROOT}")
    parts.append(host)  # RAM always, and CPU when RAPL did not supply it
    return EnergySource(parts, primary)
