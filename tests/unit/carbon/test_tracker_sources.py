"""The trainer's figures say how each was obtained; its GPU figure comes from zeus when a GPU is
there (a stand-in board here), CodeCarbon's CPU and RAM figures stay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.runtime import run_runtime
from model_garden.carbon.tracker import EnergySplit, build_report, component_sources

TESTS = Path(__file__).resolve().parents[2]


class CPU:  # named as CodeCarbon's hardware classes: the mapping reads the class name
    def __init__(self, mode: str) -> None:
        self._mode = mode


class GPU:
    pass


class RAM:
    pass


@pytest.mark.parametrize(
    ("mode", "source"),
    [
        ("intel_rapl", "rapl (codecarbon)"),
        ("cpu_load", "codecarbon cpu model (cpu_load)"),
        ("constant", "codecarbon cpu model (constant)"),
        ("", "codecarbon cpu model (tdp)"),
    ],
)
def test_each_component_names_codecarbons_way(mode: str, source: str) -> None:
    assert component_sources([CPU(mode), GPU(), RAM()]) == {
        "cpu": source,
        "gpu": "nvml (codecarbon)",
        "ram": "codecarbon ram model",
    }


def test_the_report_carries_the_sources() -> None:
    sources = {"cpu": "rapl (codecarbon)", "ram": "codecarbon ram model"}
    report = build_report(EnergySplit(1.0, 0.0, 0.5), "FRA", None, {}, sources=sources)
    assert report.component_sources == sources
    assert report.to_wire()["componentSources"] == sources


TRAINER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from unit.carbon.standin_gpu import StandInGpus
from model_garden.carbon.measure_gpu import GpuEnergyMeter
from model_garden.carbon.tracker import TrainingCarbonTracker

gpus = StandInGpus([10_000_000])
tracker = TrainingCarbonTracker(
    "FRA", measure_power_secs=1.0, gpu=lambda: (GpuEnergyMeter(gpus, "nvml (zeus 0.16.0)"), "")
)
tracker.start()
time.sleep(1.5)
gpus.counters_mj = [10_000_000 + 360_000_000]  # the board counted 360 kJ = 0.1 kWh
running = tracker.report()
gpus.counters_mj = [10_000_000 + 720_000_000]
final = tracker.stop()
print(json.dumps({"running": running.to_wire(), "final": final.to_wire()}))
"""


@pytest.mark.ml
def test_the_trainer_takes_gpu_energy_from_zeus_and_cpu_ram_from_codecarbon(
    ml_runtime: str,
) -> None:
    out = run_runtime(["-c", TRAINER, str(TESTS)], timeout=300).stdout
    reports = json.loads(out.strip().splitlines()[-1])
    running, final = reports["running"], reports["final"]
    assert running["gpuEnergyKwh"] == pytest.approx(0.1)
    assert final["gpuEnergyKwh"] == pytest.approx(0.2)
    assert final["cpuEnergyKwh"] > 0 and final["ramEnergyKwh"] > 0
    assert final["energyKwh"] == pytest.approx(
        final["cpuEnergyKwh"] + final["gpuEnergyKwh"] + final["ramEnergyKwh"]
    )
    assert final["componentMethods"]["gpu"] == "measured"
    assert final["componentSources"]["gpu"] == "nvml (zeus 0.16.0)"
    assert final["componentSources"]["ram"] == "codecarbon ram model"
    # CodeCarbon's CPU figure: RAPL where readable, its model otherwise (this machine)
    cpu = final["componentSources"]["cpu"]
    assert cpu == "rapl (codecarbon)" or cpu.startswith("codecarbon cpu model (")
    assert final["method"] == "estimated"  # RAM has no counter: never all measured here
