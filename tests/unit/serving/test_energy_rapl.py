"""RAPL counters read from a tree shaped like /sys/class/powercap: packages, DRAM, wrap-around,
and counters the meter may not read (then the estimate, saying why)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model_garden.serving.energy import RaplCpu, find_rapl, open_energy_source

MAX_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def zone(root: Path, name: str, label: str, energy_uj: int, max_uj: int = MAX_UJ) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(f"{label}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path


def set_uj(path: Path, value: int) -> None:
    (path / "energy_uj").write_text(f"{value}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> dict[str, Path]:
    """Two sockets, each with core (inside the package) and DRAM, plus psys (the platform)."""
    root = tmp_path / "powercap"
    return {
        "root": root,
        "pkg0": zone(root, "intel-rapl:0", "package-0", 1_000_000),
        "core0": zone(root, "intel-rapl:0:0", "core", 500_000),
        "dram0": zone(root, "intel-rapl:0:1", "dram", 200_000),
        "pkg1": zone(root, "intel-rapl:1", "package-1", 3_000_000),
        "dram1": zone(root, "intel-rapl:1:0", "dram", 400_000),
        "psys": zone(root, "intel-rapl:2", "psys", 9_000_000),
    }


def test_every_package_and_dram_counts_not_core_nor_psys(powercap: dict[str, Path]) -> None:
    probe = find_rapl(powercap["root"])
    assert probe.reason == ""
    assert sorted((d.path.name, d.component) for d in probe.domains) == [
        ("intel-rapl:0", "cpu"),
        ("intel-rapl:0:1", "ram"),
        ("intel-rapl:1", "cpu"),
        ("intel-rapl:1:0", "ram"),
    ]


def test_packages_add_up_and_a_wrapped_counter_counts_what_it_gained(
    powercap: dict[str, Path],
) -> None:
    rapl = RaplCpu(find_rapl(powercap["root"]).domains)
    set_uj(powercap["pkg0"], 3_500_000)  # +2.5 J
    set_uj(powercap["pkg1"], MAX_UJ - 1_000_000)
    set_uj(powercap["dram0"], 1_200_000)  # +1 J
    first = rapl.read()
    assert first["cpu"].joules == pytest.approx(2.5 + (MAX_UJ - 4_000_000) / 1e6)
    assert first["ram"].joules == pytest.approx(1.0)
    set_uj(powercap["pkg1"], 2_000_000)  # wrapped past max_energy_range_uj: +3 J
    second = rapl.read()
    assert second["cpu"].joules - first["cpu"].joules == pytest.approx(3.0)
    assert second["cpu"].method == "measured"
    assert second["cpu"].source == "rapl (2 packages, whole node)"
    assert second["ram"].source == "rapl dram (whole node)"


def test_a_counter_unreadable_for_a_while_catches_up(powercap: dict[str, Path]) -> None:
    rapl = RaplCpu(find_rapl(powercap["root"]).domains)
    counter = powercap["pkg0"] / "energy_uj"
    counter.unlink()
    counter.mkdir()  # reading it now fails (EISDIR), as a counter that vanished would
    set_uj(powercap["pkg1"], 4_000_000)
    assert rapl.read()["cpu"].joules == pytest.approx(1.0)
    counter.rmdir()
    set_uj(powercap["pkg0"], 6_000_000)
    assert rapl.read()["cpu"].joules == pytest.approx(1.0 + 5.0)


def test_without_powercap_the_cpu_is_estimated_and_says_why(tmp_path: Path) -> None:
    source = open_energy_source("rapl", pid=None, rapl_root=tmp_path / "none", gpu=no_gpu)
    cpu = source.read()["cpu"]
    assert cpu.method == "estimated"
    assert f"rapl: no {tmp_path / 'none'}" in cpu.source


def test_only_psys_is_not_a_cpu_figure(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "psys", 1)
    assert find_rapl(tmp_path).reason == f"rapl: no RAPL package under {tmp_path}"


def no_gpu() -> tuple[None, str]:
    return None, "no GPU here"


PROBE = """
import json, sys
from pathlib import Path
from model_garden.serving.energy import find_rapl, open_energy_source
root = Path(sys.argv[1])
source = open_energy_source("rapl", pid=None, rapl_root=root, gpu=lambda: (None, "none"))
cpu = source.read()["cpu"]
print(json.dumps({"reason": find_rapl(root).reason, "method": cpu.method, "source": cpu.source}))
"""


def unprivileged(args: list[str]) -> list[str]:
    """``args`` run without the power to read other users' files: as root, with
    CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped (what a pod's meter has by default)."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) drops root's file capabilities for this test"
    drop = "-dac_override,-dac_read_search"
    return [setpriv, "--bounding-set", drop, "--inh-caps", "-all", "--", *args]


def test_permission_denied_falls_back_to_the_estimate_with_the_reason(
    powercap: dict[str, Path],
) -> None:
    """Since Linux 5.10 energy_uj is readable by root only: a pod's meter usually cannot."""
    for key in ("pkg0", "pkg1", "dram0", "dram1"):
        counter = powercap[key] / "energy_uj"
        if os.geteuid() == 0:
            os.chown(counter, 65534, 65534)  # someone else's, owner-only
            counter.chmod(0o400)
        else:
            counter.chmod(0o000)
    proc = subprocess.run(
        unprivileged([sys.executable, "-c", PROBE, str(powercap["root"])]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["reason"].startswith("rapl: ") and "permission denied" in seen["reason"]
    assert seen["method"] == "estimated"
    assert seen["source"].startswith("estimate: 4 W per busy CPU thread")
    assert "permission denied" in seen["source"]
