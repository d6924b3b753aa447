"""Serving carbon adds up: real meter accounting -> InferenceDeployment status -> ModelVersion.

The readings come from the meter's own Accountant (serving/accounting.py) fed with energy and
vLLM counters, so these tests check the sums the operator shows against what the meters counted.
Every status goes through JSON between polls, as it does through the API server, and nothing is
kept between polls but that status: each poll is as after an operator restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from model_garden.api.contracts import ServingCarbon
from model_garden.operator.servingcarbon import JOULES_PER_KWH, accumulate, serving_totals
from model_garden.serving.accounting import Accountant, VllmSnapshot

INTENSITY = 3600.0  # g/kWh: 1 J = 1 mg CO2e


@dataclass
class Pod:
    """One serving pod's meter: cumulative energy and vLLM counters fed to a real Accountant."""

    uid: str
    acc: Accountant = field(default_factory=lambda: Accountant(INTENSITY, window_s=300))
    joules: float = 0.0
    prompt: float = 0.0
    generation: float = 0.0
    requests: float = 0.0
    now: float = 0.0

    def __post_init__(self) -> None:
        self.acc.tick({"cpu": 0.0}, self._snap(), now=self.now)  # origin

    def _snap(self) -> VllmSnapshot:
        return VllmSnapshot(self.prompt, self.generation, self.requests, 0.0, 100.0)

    def serve(self, joules: float, tokens: int) -> None:
        self.now += 1
        self.joules += joules
        self.prompt += tokens // 2
        self.generation += tokens - tokens // 2
        self.requests += 1
        self.acc.tick({"cpu": self.joules}, self._snap(), now=self.now)

    def idle(self, joules: float) -> None:
        self.now += 1
        self.joules += joules
        self.acc.tick({"cpu": self.joules}, self._snap(), now=self.now)

    def reading(self) -> ServingCarbon:
        # Through the wire, as the operator gets it from /carbon.
        return ServingCarbon.model_validate_json(
            self.acc.carbon().model_dump_json(by_alias=True, exclude_none=True)
        )


def stored(carbon: dict[str, Any]) -> dict[str, Any]:
    """What the API server gives back: JSON, nothing of the operator's memory."""
    loaded: dict[str, Any] = json.loads(json.dumps(carbon))
    return loaded


def poll(carbon: dict[str, Any] | None, pods: list[Pod], mv: str | None) -> dict[str, Any]:
    return stored(accumulate(carbon, {p.uid: p.reading() for p in pods}, mv))


def test_idle_energy_stays_out_of_grams_per_1k_tokens() -> None:
    """The issue's example: 10 J active + 990 J idle over 1000 tokens."""
    pod = Pod("p1")
    carbon = poll(None, [pod], "m-v1")
    pod.serve(10.0, 1000)
    pod.idle(990.0)
    meter = pod.reading()
    assert meter.grams_per_1k_tokens == pytest.approx(0.01)
    carbon = poll(carbon, [pod], "m-v1")
    assert carbon["gPer1kTokens"] == pytest.approx(0.01)  # old code: 1.0 (all energy / tokens)
    assert carbon["tokens"] == 1000
    assert carbon["energyKwh"] == pytest.approx(1000 / JOULES_PER_KWH)
    assert carbon["activeEnergyKwh"] == pytest.approx(10 / JOULES_PER_KWH)
    assert carbon["idleEnergyKwh"] == pytest.approx(990 / JOULES_PER_KWH)
    assert carbon["emissionsKg"] == pytest.approx(1e-3)
    assert carbon["idleEmissionsKg"] == pytest.approx(0.99e-3)
    assert carbon["windowSeconds"] == 300


def test_window_is_a_ratio_of_sums_over_replicas() -> None:
    busy, quiet = Pod("busy"), Pod("quiet")
    busy.serve(100.0, 1000)  # 0.1 g for 1000 tokens
    quiet.serve(30.0, 10)  # 0.03 g for 10 tokens
    carbon = poll(None, [busy, quiet], None)
    assert carbon["gPer1kTokens"] == pytest.approx(0.13 / 1010 * 1000)  # not the mean of ratios


def test_a_pod_is_counted_from_its_first_reading() -> None:
    pod = Pod("p1")
    pod.serve(50.0, 100)
    carbon = poll(None, [pod], "m-v1")  # the pod's meter started with it: all of it is new
    assert carbon["energyKwh"] == pytest.approx(50 / JOULES_PER_KWH)
    assert carbon["pods"][0]["uid"] == "p1" and carbon["pods"][0]["tokens"] == 100


def test_a_missed_poll_loses_nothing() -> None:
    a, b = Pod("a"), Pod("b")
    carbon = poll(None, [a, b], "m-v1")
    a.serve(10.0, 10)
    b.serve(20.0, 20)
    carbon = poll(carbon, [b], "m-v1")  # a did not answer
    a.serve(5.0, 5)
    carbon = poll(carbon, [a, b], "m-v1")
    assert carbon["energyKwh"] == pytest.approx(35 / JOULES_PER_KWH)
    assert carbon["tokens"] == 35


def test_a_meter_that_lost_its_totals_counts_from_zero_again() -> None:
    pod = Pod("p1")
    pod.serve(100.0, 100)
    carbon = poll(None, [pod], "m-v1")
    pod.acc = Accountant(INTENSITY)  # the container restarted without its state file
    pod.prompt = pod.generation = pod.requests = 0.0  # and so did vLLM
    pod.acc.tick({"cpu": pod.joules}, pod._snap(), now=pod.now)
    pod.serve(7.0, 10)
    carbon = poll(carbon, [pod], "m-v1")
    assert carbon["energyKwh"] == pytest.approx(107 / JOULES_PER_KWH)
    assert carbon["tokens"] == 110


def test_baselines_in_status_survive_an_operator_restart() -> None:
    """A new operator process has nothing but the stored status: the same reading adds nothing."""
    pod = Pod("p1")
    pod.serve(40.0, 40)
    carbon = poll(None, [pod], "m-v1")
    again = poll(carbon, [pod], "m-v1")  # the restarted operator reads the same totals
    assert again["energyKwh"] == carbon["energyKwh"] and again["tokens"] == carbon["tokens"]
    assert again["byModelVersion"] == carbon["byModelVersion"]


def test_baselines_of_deleted_pods_are_dropped() -> None:
    old, new = Pod("old"), Pod("new")
    carbon = poll(None, [old], "m-v1")
    carbon = stored(accumulate(carbon, {new.uid: new.reading()}, "m-v1", live_pods={"new"}))
    assert [p["uid"] for p in carbon["pods"]] == ["new"]


def test_a_status_written_before_baselines_counts_new_readings_from_their_next_poll() -> None:
    pod = Pod("p1")
    pod.serve(100.0, 100)
    legacy = {"energyKwh": 1.0, "emissionsKg": 0.5, "tokens": 5000, "method": "estimated"}
    carbon = poll(legacy, [pod], "m-v1")  # already counted by the old operator
    assert carbon["energyKwh"] == pytest.approx(1.0) and carbon["tokens"] == 5000
    pod.serve(36.0, 10)
    carbon = poll(carbon, [pod], "m-v1")
    assert carbon["energyKwh"] == pytest.approx(1.0 + 36 / JOULES_PER_KWH)


def idep(name: str, uid: str, carbon: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": uid}, "status": {"carbon": carbon}}


def test_numbers_add_up_from_meters_to_model_version_with_two_deployments() -> None:
    """Two deployments of one ModelVersion, two pods each, several polls; one poll missed, one
    pod replaced, the ModelVersion's planner running between polls: the version's serving totals
    equal what the meters counted."""
    a = [Pod("a1"), Pod("a2")]
    b = [Pod("b1"), Pod("b2")]
    replaced: list[Pod] = []
    ca: dict[str, Any] | None = None
    cb: dict[str, Any] | None = None
    mv: list[dict[str, Any]] = []  # the ModelVersion's status.servingByDeployment
    for step in range(8):
        for i, pod in enumerate(a + b):
            pod.serve(1.5 + i + step * 0.25, 7 * (i + 1) + step)
            pod.idle(3.25 * (i + 1))
        read_a = [p for p in a if not (step == 3 and p.uid == "a1")]  # a1 misses a poll
        ca = poll(ca, read_a, "m-v1")
        cb = poll(cb, b, "m-v1")
        if step == 4:  # a2 is replaced: its last reading was taken, a new pod starts from zero
            replaced.append(a[1])
            a[1] = Pod("a2-new")
        # The MV planner runs between polls, from what the API server holds.
        mv = serving_totals("m-v1", mv, [idep("a", "uid-a", ca), idep("b", "uid-b", cb)])[
            "servingByDeployment"
        ]
    assert ca is not None and cb is not None
    pods = a + b + replaced
    meters = [p.reading() for p in pods]
    joules = sum(m.energy_joules for m in meters)
    grams = sum(m.emissions_grams for m in meters)
    tokens = sum(m.tokens for m in meters)
    totals = serving_totals("m-v1", mv, [idep("a", "uid-a", ca), idep("b", "uid-b", cb)])

    assert totals["servingEnergyKwh"] == pytest.approx(joules / JOULES_PER_KWH, rel=1e-12)
    assert totals["servingEmissionsKg"] == pytest.approx(grams / 1000, rel=1e-12)
    assert sum(e["tokens"] for e in totals["servingByDeployment"]) == tokens
    # Each deployment's status holds its own pods' totals, split active/idle.
    for carbon, group in ((ca, [*a, replaced[0]]), (cb, b)):
        readings = [p.reading() for p in group]
        assert carbon["energyKwh"] == pytest.approx(
            sum(r.energy_joules for r in readings) / JOULES_PER_KWH, rel=1e-12
        )
        assert carbon["activeEmissionsKg"] == pytest.approx(
            sum(r.active_emissions_grams for r in readings) / 1000, rel=1e-12
        )
        assert carbon["idleEnergyKwh"] == pytest.approx(
            sum(r.idle_energy_joules for r in readings) / JOULES_PER_KWH, rel=1e-12
        )
        assert carbon["tokens"] == sum(r.tokens for r in readings)
        assert carbon["byModelVersion"][0]["energyKwh"] == pytest.approx(carbon["energyKwh"])
    # A deleted deployment's energy was spent: its entry stays.
    after_delete = serving_totals("m-v1", totals["servingByDeployment"], [idep("a", "uid-a", ca)])
    assert after_delete["servingEnergyKwh"] == totals["servingEnergyKwh"]


def test_deltas_go_to_the_version_being_served() -> None:
    pod = Pod("p1")
    carbon = poll(None, [pod], "m-v1")
    pod.serve(36.0, 10)
    carbon = poll(carbon, [pod], "m-v1")
    pod.serve(72.0, 20)
    carbon = poll(carbon, [pod], "m-v2")  # the deployment moved to v2
    by = {e["modelVersion"]: e for e in carbon["byModelVersion"]}
    assert by["m-v1"]["energyKwh"] == pytest.approx(36 / JOULES_PER_KWH)
    assert by["m-v2"]["energyKwh"] == pytest.approx(72 / JOULES_PER_KWH)
    assert by["m-v2"]["tokens"] == 20
    v2 = serving_totals("m-v2", [], [idep("d", "uid-d", carbon)])
    assert v2["servingByDeployment"] == [
        {
            "deployment": "d",
            "uid": "uid-d",
            "energyKwh": by["m-v2"]["energyKwh"],
            "emissionsKg": by["m-v2"]["emissionsKg"],
            "tokens": 20,
        }
    ]


def test_a_meter_from_before_the_split_still_counts() -> None:
    old = ServingCarbon(
        energy_joules=100.0,
        active_energy_joules=40.0,
        idle_energy_joules=60.0,
        emissions_grams=10.0,
        prompt_tokens=5,
    )
    carbon = stored(accumulate(None, {"p": old}, "m-v1"))
    assert carbon["emissionsKg"] == pytest.approx(0.01)
    assert carbon["activeEmissionsKg"] == pytest.approx(0.004)
    totals_only = ServingCarbon(energy_joules=36.0, emissions_grams=1.0)
    carbon = stored(accumulate(None, {"p": totals_only}, None))
    assert carbon["idleEnergyKwh"] == pytest.approx(36 / JOULES_PER_KWH)
    assert carbon["idleEmissionsKg"] == pytest.approx(0.001)
