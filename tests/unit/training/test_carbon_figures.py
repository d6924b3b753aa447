"""A run never reports zero energy, however short (issue 8, item 1).

CodeCarbon adds energy only when it samples; the tracker completes the figure with the last
sampled power over the time since, and estimates a run CodeCarbon never sampled.
"""

from __future__ import annotations

import pytest

from model_garden.carbon.grid import JOULES_PER_KWH
from model_garden.carbon.tracker import (
    FALLBACK_POWER,
    EnergySplit,
    PowerSplit,
    whole_run_energy,
)


def test_the_time_since_the_last_sample_is_counted_at_the_last_power() -> None:
    sampled = EnergySplit(cpu_kwh=1e-6, ram_kwh=2e-6)
    energy, fallback = whole_run_energy(sampled, PowerSplit(cpu_w=36.0, ram_w=3.6), 0.5, 3.0)
    assert not fallback
    assert energy.cpu_kwh == pytest.approx(1e-6 + 18.0 / JOULES_PER_KWH)
    assert energy.ram_kwh == pytest.approx(2e-6 + 1.8 / JOULES_PER_KWH)
    assert energy.gpu_kwh == 0


def test_a_run_shorter_than_the_sampling_interval_is_not_zero() -> None:
    # what CodeCarbon holds 0.2 s into a run: its start sample, nothing integrated yet
    energy, fallback = whole_run_energy(EnergySplit(), PowerSplit(cpu_w=12.0, ram_w=10.0), 0.2, 0.2)
    assert energy.total_kwh == pytest.approx(22.0 * 0.2 / JOULES_PER_KWH) and not fallback


def test_a_run_codecarbon_never_sampled_is_estimated_over_its_wall_time() -> None:
    energy, fallback = whole_run_energy(EnergySplit(), PowerSplit(), 0.0, 2.0)
    assert fallback and energy.total_kwh > 0
    assert energy.total_kwh == pytest.approx(FALLBACK_POWER.total_w * 2.0 / JOULES_PER_KWH)
    assert whole_run_energy(EnergySplit(), PowerSplit(), 0.0, 0.0) == (EnergySplit(), False)


def test_cumulative_energy_never_goes_down() -> None:
    from model_garden.carbon.tracker import EnergySplit

    high = EnergySplit(cpu_kwh=2.0, gpu_kwh=0.0, ram_kwh=1.0)
    lower_sample = EnergySplit(cpu_kwh=1.5, gpu_kwh=0.5, ram_kwh=1.2)
    kept = lower_sample.at_least(high)
    assert (kept.cpu_kwh, kept.gpu_kwh, kept.ram_kwh) == (2.0, 0.5, 1.2)
    assert kept.total_kwh >= high.total_kwh
