"""GPU energy through zeus's device layer, read from boards that stand in for absent GPUs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from model_garden.carbon.measure_gpu import GpuEnergyMeter, open_gpu_meter, open_gpus
from model_garden.serving.energy import open_energy_source

from .standin_gpu import StandInGpus

SOURCE = "nvml (zeus 0.16.0)"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_energy_is_the_counters_gain_summed_over_gpus() -> None:
    gpus = StandInGpus([5_000_000, 9_000_000])
    meter = GpuEnergyMeter(gpus, SOURCE)
    assert meter.joules() == 0.0  # the counters' values at creation are the zero
    gpus.counters_mj = [5_250_500, 9_100_000]
    assert meter.joules() == pytest.approx(250.5 + 100.0)
    gpus.counters_mj = [5_300_500, 9_100_000]
    assert meter.joules() == pytest.approx(400.5)
    assert meter.source == SOURCE


def test_a_reloaded_driver_restarts_the_counter_and_nothing_is_lost_or_negative() -> None:
    gpus = StandInGpus([7_000_000])
    meter = GpuEnergyMeter(gpus, SOURCE)
    gpus.counters_mj = [7_010_000]
    assert meter.joules() == pytest.approx(10.0)
    gpus.counters_mj = [3_000]  # the driver reloaded: it counts from zero again
    assert meter.joules() == pytest.approx(13.0)


def test_a_board_without_counter_is_integrated_from_its_power() -> None:
    clock = Clock()
    gpus = StandInGpus([1_000_000, None], power_mw=[0, 250_000])
    meter = GpuEnergyMeter(gpus, SOURCE, clock=clock)
    clock.now += 2.0
    gpus.counters_mj = [1_100_000, None]
    assert meter.joules() == pytest.approx(100.0 + 250.0 * 2.0)
    assert meter.source == f"{SOURCE}, power samples"


def test_a_failed_read_keeps_the_total_and_the_counter_catches_up() -> None:
    gpus = StandInGpus([0])
    meter = GpuEnergyMeter(gpus, SOURCE)
    gpus.counters_mj = [40_000]
    assert meter.joules() == pytest.approx(40.0)
    gpus.broken = True
    gpus.counters_mj = [90_000]
    assert meter.joules() == pytest.approx(40.0)
    gpus.broken = False
    assert meter.joules() == pytest.approx(90.0)


def test_without_zeus_there_is_no_gpu_reading_and_the_reason_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "zeus", None)  # what `import zeus` sees where it is absent
    probe = open_gpus()
    assert probe.gpus is None and probe.reason == "zeus is not installed"
    assert open_gpu_meter() == (None, "zeus is not installed")


def test_the_meter_counts_the_gpu_through_zeus_and_calls_the_pod_measured(
    tmp_path: Path,
) -> None:
    gpus = StandInGpus([2_000_000])
    source = open_energy_source(
        "auto",
        pid=None,
        rapl_root=tmp_path / "no-powercap",
        gpu=lambda: (GpuEnergyMeter(gpus, SOURCE), ""),
    )
    source.read()
    gpus.counters_mj = [2_500_000]
    reading = source.read()
    assert reading["gpu"].joules == pytest.approx(500.0)
    assert reading["gpu"].method == "measured"
    assert source.method(reading) == "measured"  # a GPU pod: the GPU does the work
    assert source.sources(reading)["gpu"] == SOURCE
    assert reading["ram"].method == "estimated"
    assert reading["cpu"].source.endswith(
        f"; rapl: no {tmp_path / 'no-powercap'} (no RAPL on this machine, or not mounted)"
    )


def test_without_a_gpu_the_meter_estimates_the_host_and_says_so() -> None:
    source = open_energy_source("estimate", pid=None, gpu=lambda: (None, "no GPU"))
    reading = source.read()
    assert "gpu" not in reading
    assert source.method(reading) == "estimated"
    assert source.sources(reading) == {
        "cpu": "estimate: 4 W per busy CPU thread (codecarbon default)",
        "ram": "estimate: codecarbon ram model",
    }
