"""The meter's pure parts: Prometheus text parsing, idle/active attribution, restarts, state."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_garden.serving.accounting import (
    VLLM_SERIES,
    Accountant,
    VllmSnapshot,
    counter_delta,
)
from model_garden.serving.energy import EstimatedHost, ProcessTree, ram_watts
from model_garden.serving.promtext import parse_labels, sum_samples

VLLM_METRICS = """\
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.79575464047e+09
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 1.0
vllm:num_requests_waiting{engine="0",model_name="tiny"} 2.0
vllm:num_requests_waiting_by_reason{engine="0",model_name="tiny",reason="capacity"} 0.0
vllm:prompt_tokens_total{engine="0",model_name="tiny"} 120.0
vllm:generation_tokens_total{engine="0",model_name="tiny"} 80.0
vllm:request_success_total{engine="0",finished_reason="stop",model_name="tiny"} 3.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="tiny"} 4.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="a \\"quoted\\" {name}"} 1.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="tiny"} 5.0
vllm:prompt_tokens_created{engine="0",model_name="tiny"} 1.7e+09
vllm:generation_tokens_total{engine="1",model_name="tiny"} NaN
"""

INTENSITY = 360.0  # g/kWh: 1 J = 1e-4 g


def test_sum_samples_picks_the_wanted_series() -> None:
    totals = sum_samples(VLLM_METRICS, VLLM_SERIES)
    assert totals["vllm:prompt_tokens_total"] == 120
    assert totals["vllm:generation_tokens_total"] == 80  # NaN skipped
    assert totals["vllm:request_success_total"] == 8
    assert totals["vllm:num_requests_running"] == 1
    assert totals["vllm:num_requests_waiting"] == 2  # not the _by_reason series
    assert totals["process_start_time_seconds"] == pytest.approx(1.79575464047e9)
    snap = VllmSnapshot.from_totals(totals)
    assert (snap.prompt_tokens, snap.generation_tokens, snap.requests, snap.in_flight) == (
        120,
        80,
        8,
        3,
    )


def test_parse_labels_handles_escapes() -> None:
    assert parse_labels('a="1",b="x \\"y\\" {z}",c="\\\\"') == {
        "a": "1",
        "b": 'x "y" {z}',
        "c": "\\",
    }


def test_counter_delta() -> None:
    assert counter_delta(10, 15, restarted=False) == 5
    assert counter_delta(10, 4, restarted=False) == 4  # went down: a restart
    assert counter_delta(10, 40, restarted=True) == 40


def snap(
    prompt: float, gen: float, req: float, in_flight: float = 0, start: float = 100.0
) -> VllmSnapshot:
    return VllmSnapshot(prompt, gen, req, in_flight, start)


def test_idle_energy_is_kept_out_of_per_token_figures() -> None:
    acc = Accountant(INTENSITY, country="FRA", window_s=60)
    acc.tick({"cpu": 0.0, "ram": 0.0}, snap(0, 0, 0), now=0)  # origin
    acc.tick({"cpu": 10.0, "ram": 10.0}, snap(0, 0, 0), now=1)  # idle: 20 J
    acc.tick({"cpu": 40.0, "ram": 20.0}, snap(0, 0, 0, in_flight=1), now=2)  # active: 40 J
    acc.tick({"cpu": 70.0, "ram": 30.0}, snap(30, 10, 1), now=3)  # active: 40 J, 40 tokens
    acc.tick({"cpu": 75.0, "ram": 40.0}, snap(30, 10, 1), now=4)  # idle: 15 J
    s = acc.state
    assert s.idle_energy_joules == pytest.approx(35)
    assert s.active_energy_joules == pytest.approx(80)
    assert s.energy_joules == pytest.approx(115)
    assert s.component_joules == {"cpu": pytest.approx(75), "ram": pytest.approx(40)}
    assert s.emissions_grams == pytest.approx(115 * INTENSITY / 3.6e6)
    assert (s.prompt_tokens, s.generation_tokens, s.requests) == (30, 10, 1)
    per_token, per_1k, tokens = acc.window_figures()
    assert tokens == 40
    assert per_token == pytest.approx(80 / 40)
    assert per_1k == pytest.approx(2.0 * 1000 * INTENSITY / 3.6e6)
    doc = acc.carbon()
    assert doc.joules_per_token == pytest.approx(2.0)
    assert doc.grams_per_1k_tokens == pytest.approx(per_1k)
    assert doc.tokens == 40 and doc.method == "estimated" and doc.country == "FRA"


def test_window_forgets_old_ticks() -> None:
    acc = Accountant(INTENSITY, window_s=10)
    acc.tick({"cpu": 0.0}, snap(0, 0, 0), now=0)
    acc.tick({"cpu": 10.0}, snap(5, 5, 1), now=1)
    assert acc.window_figures()[2] == 10
    acc.tick({"cpu": 11.0}, snap(5, 5, 1), now=30)
    assert acc.window_figures() == (None, None, 0)
    doc = acc.carbon()
    assert doc.joules_per_token is None and doc.grams_per_1k_tokens is None
    assert doc.window_tokens == 0 and doc.window_active_energy_joules == 0
    assert doc.active_energy_joules == pytest.approx(10.0) and doc.tokens == 10  # totals keep it


def test_carbon_splits_totals_and_reports_the_window() -> None:
    """The issue's example on the meter: 10 J active + 990 J idle over 1000 tokens."""
    acc = Accountant(3600.0, window_s=300)  # 1 J = 1 mg CO2e
    acc.tick({"cpu": 0.0}, snap(0, 0, 0), now=0)
    acc.tick({"cpu": 10.0}, snap(500, 500, 1), now=1)  # active
    acc.tick({"cpu": 1000.0}, snap(500, 500, 1), now=2)  # idle
    doc = acc.carbon()
    assert doc.grams_per_1k_tokens == pytest.approx(0.01)
    assert doc.joules_per_token == pytest.approx(0.01)
    assert (doc.window_seconds, doc.window_tokens) == (300, 1000)
    assert doc.window_active_energy_joules == pytest.approx(10.0)
    assert doc.window_active_emissions_grams == pytest.approx(0.01)
    assert doc.active_emissions_grams == pytest.approx(0.01)
    assert doc.idle_emissions_grams == pytest.approx(0.99)
    assert doc.energy_joules == doc.active_energy_joules + doc.idle_energy_joules
    assert doc.emissions_grams == doc.active_emissions_grams + doc.idle_emissions_grams


def test_state_files_without_the_idle_split_are_split_on_load(tmp_path: Path) -> None:
    path = tmp_path / "meter.json"
    path.write_text('{"emissions_grams": 3.0, "active_emissions_grams": 1.0}')
    acc = Accountant.resume(path, intensity_g_per_kwh=INTENSITY)
    assert acc.carbon().idle_emissions_grams == pytest.approx(2.0)
    assert acc.carbon().emissions_grams == pytest.approx(3.0)


def test_vllm_restart_and_outage_do_not_reset_totals() -> None:
    acc = Accountant(INTENSITY)
    acc.tick({"cpu": 0.0}, snap(100, 50, 5, start=100), now=0)
    acc.tick({"cpu": 5.0}, snap(110, 60, 6, start=100), now=1)
    acc.tick({"cpu": 9.0}, None, now=2)  # vLLM down: energy still counts, as idle
    assert not acc.vllm_up
    # New process, counters from zero, and already grown past the old values before the scrape.
    acc.tick({"cpu": 12.0}, snap(200, 100, 7, start=500), now=3)
    s = acc.state
    assert (s.prompt_tokens, s.generation_tokens, s.requests) == (110 + 200, 60 + 100, 6 + 7)
    assert s.vllm_restarts == 1
    assert s.energy_joules == pytest.approx(12)


def test_meter_restart_resumes_from_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "meter.json"
    acc = Accountant.resume(path, intensity_g_per_kwh=INTENSITY)
    acc.tick({"cpu": 0.0}, snap(10, 10, 1), now=0)
    acc.tick({"cpu": 50.0}, snap(20, 20, 2), now=1)
    acc.save()
    # A new meter: its energy source starts anywhere, vLLM is the same process.
    again = Accountant.resume(path, intensity_g_per_kwh=INTENSITY)
    again.tick({"cpu": 1000.0}, snap(20, 20, 2), now=2)  # origin only: no jump
    again.tick({"cpu": 1010.0}, snap(25, 20, 3), now=3)
    assert again.tokens == 45
    assert again.state.requests == 3
    assert again.state.energy_joules == pytest.approx(60)
    assert again.state.vllm_restarts == 0


def test_corrupt_state_file_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "meter.json"
    path.write_text("{not json")
    assert Accountant.resume(path, intensity_g_per_kwh=INTENSITY).state.energy_joules == 0


def test_ram_power_follows_codecarbon() -> None:
    assert ram_watts(0.5) == 10  # two DIMMs at 5 W minimum
    assert ram_watts(32) == 20
    assert ram_watts(100) == 5 * 4 + 5 * 0.9 * 4


def test_estimate_is_four_joules_per_cpu_second() -> None:
    samples = iter([(100.0, 1.0), (102.5, 1.0)])
    host = EstimatedHost(lambda: next(samples))
    assert host.read()["cpu"].joules == 0
    second = host.read()
    assert second["cpu"].joules == pytest.approx(10.0)
    assert second["cpu"].method == "estimated"
    assert second["ram"].joules >= 0


def test_process_tree_sees_this_process() -> None:
    import os

    tree = ProcessTree(os.getpid())
    cpu, rss = tree.sample()
    sum(i * i for i in range(200_000))
    cpu2, _ = tree.sample()
    assert cpu2 >= cpu > 0 and rss > 0.001
