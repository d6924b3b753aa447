"""Kepler's per-pod counters, as Prometheus answers them, turned into joules per component."""

from __future__ import annotations

from typing import Any

import pytest

from model_garden.carbon.kepler import (
    CURRENT,
    LEGACY,
    KeplerUnavailable,
    exact_pod,
    increase,
    job_pods,
    joules_from_range,
    joules_from_vector,
)

POD = {"pod_name": "tune-train-x7k2p", "pod_namespace": "team", "node_name": "n1"}


def series(labels: dict[str, str], *samples: tuple[float, float]) -> dict[str, Any]:
    return {"metric": labels, "values": [[t, str(v)] for t, v in samples]}


def current(zone: str, state: str = "running", **more: str) -> dict[str, str]:
    return {"__name__": CURRENT.metric, **POD, "zone": zone, "state": state, **more}


def legacy(metric: str, container: str, mode: str) -> dict[str, str]:
    return {
        "__name__": f"kepler_container_{metric}_joules_total",
        "pod_name": "tune-train-x7k2p",
        "container_namespace": "team",
        "container_name": container,
        "mode": mode,
    }


@pytest.mark.parametrize(
    ("values", "from_zero", "gained"),
    [
        ([5.0, 7.0, 10.0], True, 10.0),  # began inside the range: its first value counts
        ([5.0, 7.0, 10.0], False, 5.0),  # last minus first
        ([5.0, 9.0, 2.0, 4.0], True, 9.0 + 4.0),  # Kepler restarted: counts from 0 again
        ([], True, 0.0),
    ],
)
def test_increase_counts_every_rise_and_restarts(
    values: list[float], from_zero: bool, gained: float
) -> None:
    assert increase(values, from_zero) == pytest.approx(gained)


def test_current_kepler_package_is_cpu_dram_is_ram_and_states_are_one_counter() -> None:
    """When the pod ends, Kepler >= 0.10 moves the same counter from state=running to
    state=terminated: it must not count twice. core is inside package, so it is not added."""
    result = [
        series(current("package"), (100, 12.5), (130, 40.0), (160, 90.0)),
        series(current("package", "terminated"), (190, 90.0), (220, 90.0)),
        series(current("dram"), (100, 2.0), (130, 4.0), (160, 7.5)),
        series(current("core"), (100, 10.0), (160, 80.0)),
    ]
    energy = joules_from_range(result, CURRENT)
    assert energy.joules == {"cpu": pytest.approx(90.0), "ram": pytest.approx(7.5)}
    assert energy.sources == {
        "cpu": "kepler:kepler_pod_cpu_joules_total{zone=package}",
        "ram": "kepler:kepler_pod_cpu_joules_total{zone=dram}",
    }
    assert energy.scheme == "kepler>=0.10"


def test_every_attempts_pod_adds_up() -> None:
    first = dict(POD, pod_name="tune-train-aaaaa")
    second = dict(POD, pod_name="tune-train-bbbbb")
    result = [
        series({**current("package"), **first}, (100, 3.0), (130, 30.0)),
        series({**current("package"), **second}, (400, 1.0), (430, 11.0)),
    ]
    assert joules_from_range(result, CURRENT).joules == {"cpu": pytest.approx(41.0)}


def test_kepler_07_sums_dynamic_and_idle_over_containers() -> None:
    result = [
        series(legacy("package", "trainer", "dynamic"), (0, 1.0), (30, 21.0)),
        series(legacy("package", "trainer", "idle"), (0, 0.5), (30, 5.5)),
        series(legacy("package", "sidecar", "dynamic"), (0, 0.0), (30, 2.0)),
        series(legacy("dram", "trainer", "dynamic"), (0, 0.25), (30, 3.25)),
    ]
    energy = joules_from_range(result, LEGACY)
    assert energy.joules == {"cpu": pytest.approx(21.0 + 5.5 + 2.0), "ram": pytest.approx(3.25)}
    assert energy.sources["cpu"] == "kepler:kepler_container_package_joules_total"
    assert energy.sources["ram"] == "kepler:kepler_container_dram_joules_total"


def test_instant_counters_take_the_highest_state_and_sum_the_rest() -> None:
    result = [
        {"metric": current("package"), "value": [500, "120.5"]},
        {"metric": current("package", "terminated"), "value": [500, "100.0"]},
        {"metric": current("dram"), "value": [500, "9"]},
    ]
    assert joules_from_vector(result, CURRENT).joules == {"cpu": 120.5, "ram": 9.0}


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ({"oops": 1}, "data.result={'oops': 1}, not a matrix"),
        (["x"], "a series without labels"),
        ([{"metric": current("package")}], "has no 'values'"),
        ([series(current("package"), (1, "abc"))], "'abc' is not a number"),  # type: ignore[arg-type]
        ([{"metric": current("dram"), "values": [[1, "NaN"]]}], "'NaN' is not a finite number"),
        ([{"metric": current("dram"), "values": [[1]]}], "[1] is not [time, value]"),
    ],
)
def test_malformed_answers_are_refused_naming_what_is_wrong(result: Any, message: str) -> None:
    with pytest.raises(KeplerUnavailable, match=None) as caught:
        joules_from_range(result, CURRENT)
    assert message in str(caught.value)


def test_selectors_name_the_pods_of_a_job_across_attempts() -> None:
    assert CURRENT.selector("team", job_pods("tune-train")) == (
        'kepler_pod_cpu_joules_total{pod_namespace="team",'
        'pod_name=~"tune-train-[a-z0-9]{5}",zone=~"dram|package"}'
    )
    assert LEGACY.selector("team", exact_pod("web.v1-0")) == (
        '{__name__=~"kepler_container_(package|dram)_joules_total",'
        'container_namespace="team",pod_name=~"web\\\\.v1-0"}'
    )
    long = "a" * 63
    # the Job controller's generateName "<job>-" is cut to 58 characters before the 5 random
    assert job_pods(long) == "a" * 58 + "[a-z0-9]{5}"


def test_a_name_that_is_not_kubernetes_is_refused() -> None:
    with pytest.raises(ValueError, match="pod name 'x\"}' is not a Kubernetes name"):
        exact_pod('x"}')
