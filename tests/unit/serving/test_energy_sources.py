"""The meter's choice of energy source: flags, the pod it follows, and Kepler's counters."""

from __future__ import annotations

import socket

import pytest

from model_garden.carbon.kepler import KeplerUnavailable, PodEnergy
from model_garden.serving.energy import KeplerPod, kepler_target, open_energy_source
from model_garden.serving.meter import parse_args

PKG = "kepler:kepler_pod_cpu_joules_total{zone=package}"
DRAM = "kepler:kepler_pod_cpu_joules_total{zone=dram}"


def test_the_meter_takes_kepler_and_its_prometheus_from_its_flags() -> None:
    args = parse_args(
        ["--energy-source", "kepler", "--prometheus-url", "http://prom:9090", "--pod-name", "p-1"]
    )
    assert (args.energy_source, args.prometheus_url, args.pod_name) == (
        "kepler",
        "http://prom:9090",
        "p-1",
    )
    with pytest.raises(SystemExit):
        parse_args(["--energy-source", "kepler-ish"])


def test_the_pod_is_named_by_flag_then_downward_api_then_hostname(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert kepler_target(None, "team") is None  # no Prometheus: no Kepler
    monkeypatch.delenv("POD_NAME", raising=False)
    assert kepler_target("http://p", "team") is not None
    assert kepler_target("http://p", "team").pod == socket.gethostname()  # type: ignore[union-attr]
    monkeypatch.setenv("POD_NAME", "chat-server-k4m2n")
    assert kepler_target("http://p", "team").pod == "chat-server-k4m2n"  # type: ignore[union-attr]
    assert kepler_target("http://p", "team", "flag-pod").pod == "flag-pod"  # type: ignore[union-attr]


def test_kepler_without_prometheus_and_unknown_sources_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="--energy-source kepler needs --prometheus-url"):
        open_energy_source("kepler", gpu=lambda: (None, "no GPU"))
    with pytest.raises(ValueError, match="--energy-source 'solar': expected one of auto, nvml"):
        open_energy_source("solar")


class Answers:
    """Kepler's counters as successive Prometheus answers (the real reader is tested against a
    real Prometheus in tests/chart/test_kepler_prometheus.py)."""

    def __init__(self, *answers: PodEnergy | Exception) -> None:
        self.answers = list(answers)

    def __call__(self, at: float) -> PodEnergy:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def counters(cpu: float, ram: float | None = None) -> PodEnergy:
    joules = {"cpu": cpu} | ({"ram": ram} if ram is not None else {})
    return PodEnergy(joules, {"cpu": PKG, "ram": DRAM})


def test_keplers_counters_count_from_the_meters_start_through_failures_and_restarts() -> None:
    source = KeplerPod(
        Answers(
            counters(1000.0, 50.0),
            counters(1010.0, 52.0),
            KeplerUnavailable("Prometheus at http://p did not answer"),
            counters(1030.0, 55.0),  # caught up: the counters are cumulative
            counters(4.0, 1.0),  # Kepler restarted: counts on from its new value
        ),
        refresh_s=0.0,
    )
    steps = [source.read() for _ in range(4)]
    assert [(r["cpu"].joules, r["ram"].joules) for r in steps] == [
        (10.0, 2.0),
        (10.0, 2.0),
        (30.0, 5.0),
        (34.0, 6.0),
    ]
    assert steps[-1]["cpu"].method == "measured" and steps[-1]["cpu"].source == PKG


def test_a_component_kepler_reports_later_starts_from_its_first_value() -> None:
    source = KeplerPod(Answers(counters(100.0), counters(110.0, 7.0), counters(120.0, 9.5)), 0.0)
    first = source.read()  # DRAM appears: its first value is its zero
    assert (first["cpu"].joules, first["ram"].joules, first["ram"].source) == (10.0, 0.0, DRAM)
    assert source.read()["ram"].joules == 2.5
