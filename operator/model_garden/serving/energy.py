"""Where the meter's joules come from: zeus (GPU), RAPL or Kepler (CPU, RAM), else an estimate.

Each source is a cumulative joule counter per component (``gpu``, ``cpu``, ``ram``) with a
method and a source label (how the figure was obtained). The estimate follows CodeCarbon's
model for a CPU it does not know and no RAPL: a fixed power per busy thread (so energy is
proportional to CPU-seconds) and a RAM power from the memory size by its DIMM-count model,
applied to the served process tree (the pod) rather than to the whole machine. No CodeCarbon
import: its tracker costs seconds to start and samples the machine.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from model_garden.api.common import CarbonMethod
from model_garden.carbon import kepler
from model_garden.carbon.measure_gpu import GpuEnergyMeter, open_gpu_meter

log = logging.getLogger(__name__)

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
    source: str = ""
    """How the figure was obtained: ``rapl``, ``nvml (zeus 0.16.0)``, ``kepler:<metric>``, or
    the estimate's model (and why nothing better was available)."""


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


CPU_ESTIMATE = f"estimate: {WATTS_PER_BUSY_THREAD:g} W per busy CPU thread (codecarbon default)"
RAM_ESTIMATE = "estimate: codecarbon ram model"


class EstimatedHost:
    """CPU + RAM joules estimated from CPU-seconds and resident memory (CodeCarbon's model).

    ``why`` says per component why nothing measured it (``rapl: not readable ...``); it is
    appended to the source label, so a figure says both what it is and why.
    """

    def __init__(
        self, sampler: Callable[[], tuple[float, float]], why: dict[str, str] | None = None
    ) -> None:
        self.sampler = sampler
        self.why = dict(why or {})
        self._cpu0: float | None = None
        self._ram_j = 0.0
        self._last_t: float | None = None

    def _label(self, component: str, base: str) -> str:
        reason = self.why.get(component)
        return f"{base}; {reason}" if reason else base

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
                (cpu_s - self._cpu0) * WATTS_PER_BUSY_THREAD,
                CarbonMethod.ESTIMATED,
                self._label("cpu", CPU_ESTIMATE),
            ),
            "ram": ComponentEnergy(
                self._ram_j, CarbonMethod.ESTIMATED, self._label("ram", RAM_ESTIMATE)
            ),
        }


@dataclass(frozen=True)
class RaplDomain:
    """One readable RAPL counter: a CPU package (``cpu``) or a package's DRAM (``ram``)."""

    path: Path
    component: str
    max_uj: int
    """``max_energy_range_uj``: ``energy_uj`` wraps to 0 past it."""


@dataclass(frozen=True)
class RaplProbe:
    domains: list[RaplDomain] = field(default_factory=list)
    reason: str = ""
    """Why there is no CPU counter (``permission denied``: since Linux 5.10 ``energy_uj`` is
    readable by root only, a side channel otherwise)."""


def _rapl_component(path: Path) -> str | None:
    """``cpu`` for a package (top level, ``package-N``), ``ram`` for a DRAM domain. ``core``
    and ``uncore`` are inside their package's figure and ``psys`` is the whole platform:
    adding either would count energy twice."""
    try:
        name = (path / "name").read_text().strip()
    except OSError:
        name = "package" if path.name.count(":") == 1 else ""
    if name.startswith("package"):
        return "cpu"
    return "ram" if name == "dram" else None


def find_rapl(root: Path = RAPL_ROOT) -> RaplProbe:
    """The RAPL counters under ``root`` this process can read: every package, and DRAM where
    the CPU exposes it; none readable, the reason."""
    if not root.is_dir():
        return RaplProbe(reason=f"rapl: no {root} (no RAPL on this machine, or not mounted)")
    domains: list[RaplDomain] = []
    problems: list[str] = []
    for path in sorted(root.glob("intel-rapl:*")):
        component = _rapl_component(path)
        if component is None:
            continue
        try:
            int((path / "energy_uj").read_text())
            max_uj = int((path / "max_energy_range_uj").read_text())
        except PermissionError:
            problems.append(f"{path / 'energy_uj'}: permission denied (root only since Linux 5.10)")
            continue
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: unreadable ({exc})")
            continue
        domains.append(RaplDomain(path, component, max_uj))
    if any(d.component == "cpu" for d in domains):
        return RaplProbe(domains)
    reason = problems[0] if problems else f"no RAPL package under {root}"
    return RaplProbe(reason=f"rapl: {reason}")


class RaplCpu:
    """CPU (and DRAM) energy from RAPL counters: machine-wide (the node's sockets, every package
    summed), wrap-safe (a counter lower than its last value went past ``max_energy_range_uj``).

    A counter that cannot be read at one sample is skipped and read again at the next: the
    energy in between is not lost, only late (unless it wrapped twice meanwhile: at most
    minutes apart on a busy server, far longer than a meter's interval).
    """

    def __init__(self, domains: list[RaplDomain]) -> None:
        self.domains = domains
        self._last: dict[Path, int] = {}
        self._joules = dict.fromkeys(sorted({d.component for d in domains}), 0.0)
        packages = sum(1 for d in domains if d.component == "cpu")
        self.labels = {
            "cpu": f"rapl ({packages} package{'s' if packages != 1 else ''}, whole node)",
            "ram": "rapl dram (whole node)",
        }
        self._warned: set[Path] = set()
        self.read()  # the first values are the zero

    def read(self) -> Reading:
        for domain in self.domains:
            try:
                value = int((domain.path / "energy_uj").read_text())
            except (OSError, ValueError) as exc:
                if domain.path not in self._warned:
                    log.warning("RAPL counter %s unreadable (%s); retrying", domain.path, exc)
                    self._warned.add(domain.path)
                continue
            last = self._last.get(domain.path)
            if last is not None:
                delta = value - last
                if delta < 0:  # the counter wrapped
                    delta += domain.max_uj
                self._joules[domain.component] += delta / 1e6
            self._last[domain.path] = value
        return {
            component: ComponentEnergy(joules, CarbonMethod.MEASURED, self.labels[component])
            for component, joules in self._joules.items()
        }


class ZeusGpu:
    """GPU energy from the boards' own counters through zeus (carbon/measure_gpu.py)."""

    def __init__(self, meter: GpuEnergyMeter) -> None:
        self.meter = meter

    def read(self) -> Reading:
        return {
            "gpu": ComponentEnergy(self.meter.joules(), CarbonMethod.MEASURED, self.meter.source)
        }


class KeplerPod:
    """This pod's CPU and DRAM energy as Kepler attributes it, read back from Prometheus.

    The figures are Kepler's counters since the meter started (its first answer is the zero).
    Prometheus is asked at most every ``refresh_s`` (Kepler updates every few seconds, and
    Prometheus scrapes it less often); in between, and when a query fails (logged), the last
    figure stands and the next answer catches up: the counters are cumulative. A counter that
    went back (Kepler restarted) continues from its new value.
    """

    def __init__(
        self,
        query: Callable[[float], kepler.PodEnergy],
        refresh_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.query = query
        self.refresh_s = refresh_s
        self.clock = clock
        self.now = now
        """The instant Prometheus is asked about (unix seconds)."""
        first = query(now())  # KeplerUnavailable: the caller keeps the estimate
        self.sources = dict(first.sources)
        self._last = dict(first.joules)
        self._joules = dict.fromkeys(first.joules, 0.0)
        self._next = clock() + refresh_s
        self._failing = False

    def read(self) -> Reading:
        if self.clock() >= self._next:
            self._next = self.clock() + self.refresh_s
            try:
                self._add(self.query(self.now()))
                self._failing = False
            except kepler.KeplerUnavailable as exc:
                if not self._failing:
                    log.warning("Kepler figures unavailable (%s); keeping the last ones", exc)
                self._failing = True
        return {
            component: ComponentEnergy(joules, CarbonMethod.MEASURED, self.sources[component])
            for component, joules in self._joules.items()
        }

    def _add(self, energy: kepler.PodEnergy) -> None:
        for component, value in energy.joules.items():
            last = self._last.get(component)
            self._last[component] = value
            if last is None:  # a component Kepler began reporting later: its zero
                self._joules[component] = 0.0
                self.sources[component] = energy.sources[component]
                continue
            self._joules[component] += value - last if value >= last else value


class Part(Protocol):
    def read(self) -> Reading: ...


class EnergySource:
    """The pod's energy from the best sources available, and which of them are measured.

    ``method`` is ``measured`` when the component that does the serving work is measured: the GPU
    on a GPU pod, the CPU (RAPL or Kepler) on a CPU pod. The other components are still counted,
    and each component's own method and source are exported. The first part to report a
    component wins: the parts are ordered best first.
    """

    def __init__(self, parts: list[Part], primary: str) -> None:
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

    @staticmethod
    def sources(reading: Reading) -> dict[str, str]:
        """component -> how its figure was obtained (CarbonReport.component_sources)."""
        return {component: energy.source for component, energy in sorted(reading.items())}


ENERGY_SOURCES = ("auto", "nvml", "rapl", "kepler", "estimate")
"""``--energy-source``: ``nvml`` is the GPU through zeus (NVML, or AMD SMI on AMD boards)."""


@dataclass(frozen=True)
class KeplerTarget:
    """Where Kepler's figures for this pod are: Prometheus, and the pod's namespace and name."""

    prometheus_url: str
    namespace: str
    pod: str
    timeout_s: float = 5.0
    refresh_s: float = 15.0


def kepler_target(
    prometheus_url: str | None, namespace: str, pod: str | None = None
) -> KeplerTarget | None:
    """The meter's pod in ``prometheus_url`` (None without one). The pod's name: ``pod``, else
    ``$POD_NAME`` (the downward API), else the hostname, which Kubernetes sets to it."""
    if not prometheus_url:
        return None
    return KeplerTarget(
        prometheus_url, namespace, pod or os.environ.get("POD_NAME") or socket.gethostname()
    )


def open_energy_source(
    kind: str = "auto",
    pid: int | None = None,
    kepler_target: KeplerTarget | None = None,
    rapl_root: Path = RAPL_ROOT,
    gpu: Callable[[], tuple[GpuEnergyMeter | None, str]] = open_gpu_meter,
) -> EnergySource:
    """The best sources for ``kind``; what cannot be measured is estimated, labelled with why.

    ``auto``: the GPU through zeus when one answers, RAPL when readable, the estimate for the
    rest. ``kepler``: the GPU as ``auto``, CPU and DRAM from Kepler through Prometheus (the
    pod's share), the estimate for what Kepler lacks, and ``auto``'s sources when Kepler cannot
    be reached (RAPL is the whole node's figure). ``nvml``/``rapl``: that source only, plus the
    estimate. ``estimate``: only the estimate. A source asked for that is not available is
    logged as a warning and the estimate stands in, saying why: a meter that exits would
    leave the pod uncounted.

    ``pid`` scopes the estimate to that process tree (the launcher passes its own pid, so the
    pod's vLLM and meter are counted and a neighbour's work is not); without it, the cgroup.
    """
    if kind not in ENERGY_SOURCES:
        raise ValueError(f"--energy-source {kind!r}: expected one of {', '.join(ENERGY_SOURCES)}")
    if kind == "kepler" and kepler_target is None:
        raise ValueError("--energy-source kepler needs --prometheus-url")
    parts: list[Part] = []
    why: dict[str, str] = {}
    primary = "cpu"
    if kind in ("auto", "nvml", "kepler"):
        meter, reason = gpu()
        if meter is not None:
            parts.append(ZeusGpu(meter))
            primary = "gpu"
        elif kind == "nvml":
            log.warning("--energy-source nvml: %s; the GPU is not counted", reason)
        else:
            log.info("no GPU energy: %s", reason)
    kepler_open = False
    if kind == "kepler" and kepler_target is not None:
        try:
            parts.append(_open_kepler(kepler_target))
            kepler_open = True
        except (kepler.KeplerUnavailable, ValueError) as exc:
            log.warning("Kepler unavailable, falling back: %s", exc)
            why["cpu"] = why["ram"] = f"kepler unavailable: {exc}"
    if kind in ("auto", "rapl") or (kind == "kepler" and not kepler_open):
        probe = find_rapl(rapl_root)
        if probe.domains:
            parts.append(RaplCpu(probe.domains))
        else:
            if kind == "rapl":
                log.warning("--energy-source rapl: %s; estimating the CPU", probe.reason)
            why["cpu"] = "; ".join(filter(None, (why.get("cpu"), probe.reason)))
    parts.append(EstimatedHost(ProcessTree(pid).sample if pid else MachineCpu().sample, why))
    return EnergySource(parts, primary)


def _open_kepler(target: KeplerTarget) -> KeplerPod:
    def query(at: float) -> kepler.PodEnergy:
        return kepler.pod_counters(
            target.prometheus_url, target.namespace, target.pod, at, target.timeout_s
        )

    return KeplerPod(query, target.refresh_s)
