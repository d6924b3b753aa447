"""Per-adapter serving carbon adds up from meters to ModelVersions (issue 13, item 5).

Two pods' real Accountants are fed recorded vLLM pages (adapter a alone, b alone, both, the
base model, idle); the operator's sums over them must give each adapter's ModelVersion exactly
its ticks, the served version the base model's ticks and all idle energy, and keep the ticks
that mixed adapters apart, so that versions + shared bucket = the deployment's totals.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_garden.api.contracts import ServingCarbon
from model_garden.operator.modelversion.plan import ModelVersionWorld, plan_modelversion
from model_garden.operator.servingcarbon import JOULES_PER_KWH, accumulate, serving_totals
from model_garden.serving.accounting import Accountant, VllmSnapshot

from .factories import NOW, SETTINGS, idep, mv

INTENSITY = 3600.0  # g/kWh: 1 J = 1 mg CO2e
ADAPTERS = {"a": "chat-a-v1", "b": "chat-b-v1"}
"""Adapter name -> its ModelVersion (<model>-v<version>, so model chat-a, version 1)."""


class Pod:
    """One pod's meter fed pages: counters by the base name ``chat``, the LoRA gauge's series."""

    def __init__(self, uid: str) -> None:
        self.uid = uid
        self.acc = Accountant(INTENSITY)
        self.joules = 0.0
        self.tokens = 0
        self.series: dict[str, float] = {}
        self.clock = 1000.0
        self._tick(0.0, 0, [])

    def _tick(self, joules: float, tokens: int, listed: list[str], running: int = 0) -> None:
        self.joules += joules
        self.tokens += tokens
        for combo in listed:
            self.clock += 0.1
            self.series[combo] = self.clock
        lines = [
            f'vllm:prompt_tokens_total{{model_name="chat"}} {self.tokens}',
            'vllm:generation_tokens_total{model_name="chat"} 0',
            f'vllm:num_requests_running{{model_name="chat"}} {running}',
            *(
                f'vllm:lora_requests_info{{max_lora="2",running_lora_adapters="{c}",'
                f'waiting_lora_adapters=""}} {at}'
                for c, at in self.series.items()
            ),
        ]
        snap = VllmSnapshot.from_page("\n".join(lines) + "\n")
        self.acc.tick({"cpu": self.joules}, snap, now=self.clock)

    def serve(self, joules: float, tokens: int, *adapters: str) -> None:
        """One tick serving ``adapters`` together (none: the base model), ending idle."""
        self._tick(joules, tokens, [",".join(adapters), ""] if adapters else [])

    def idle(self, joules: float) -> None:
        self._tick(joules, 0, [])

    def reading(self) -> ServingCarbon:
        return ServingCarbon.model_validate_json(
            self.acc.carbon().model_dump_json(by_alias=True, exclude_none=True)
        )


def poll(
    carbon: dict[str, Any] | None, pods: list[Pod], adapters: dict[str, str] | None = ADAPTERS
) -> dict[str, Any]:
    out = accumulate(carbon, {p.uid: p.reading() for p in pods}, "chat-v1", adapters=adapters)
    loaded: dict[str, Any] = json.loads(json.dumps(out))  # through the API server
    return loaded


def served(carbon: dict[str, Any]) -> dict[str, tuple[float, float, int]]:
    return {
        e["modelVersion"]: (e["energyKwh"] * JOULES_PER_KWH, e["emissionsKg"] * 1000, e["tokens"])
        for e in carbon["byModelVersion"]
    }


def test_each_adapter_version_gets_its_ticks_and_the_parts_add_up() -> None:
    p1, p2 = Pod("p1"), Pod("p2")
    carbon = poll(None, [p1, p2])
    p1.serve(10.0, 30, "a")
    p2.serve(4.0, 8, "b")
    carbon = poll(carbon, [p1, p2])
    p1.serve(6.0, 12, "a", "b")  # shared
    p1.idle(20.0)
    p2.serve(5.0, 7)  # the base model
    p2.serve(3.0, 5, "a")
    carbon = poll(carbon, [p2])  # p1 missed a poll: its next reading covers it
    p1.serve(2.0, 2, "b")
    carbon = poll(carbon, [p1, p2])

    got = served(carbon)
    assert got["chat-a-v1"] == (pytest.approx(13.0), pytest.approx(0.013), 35)
    assert got["chat-b-v1"] == (pytest.approx(6.0), pytest.approx(0.006), 10)
    assert got["chat-v1"] == (pytest.approx(25.0), pytest.approx(0.025), 7)  # 5 J + 20 J idle
    assert carbon["unattributedTokens"] == 12
    assert carbon["unattributedEnergyKwh"] * JOULES_PER_KWH == pytest.approx(6.0)
    by_adapter = {e["adapter"]: e for e in carbon["byAdapter"]}
    assert {n: (e.get("modelVersion"), e["tokens"]) for n, e in by_adapter.items()} == {
        "a": ("chat-a-v1", 35),
        "b": ("chat-b-v1", 10),
        "chat": ("chat-v1", 7),
    }
    # versions + shared bucket = the deployment's totals, and the meters' totals.
    assert sum(t for _, _, t in got.values()) + carbon["unattributedTokens"] == carbon["tokens"]
    assert carbon["tokens"] == p1.reading().tokens + p2.reading().tokens == 64
    energy = sum(j for j, _, _ in got.values()) + carbon["unattributedEnergyKwh"] * JOULES_PER_KWH
    assert energy == pytest.approx(carbon["energyKwh"] * JOULES_PER_KWH)
    assert carbon["energyKwh"] * JOULES_PER_KWH == pytest.approx(50.0)


def test_without_the_adapter_map_the_served_version_keeps_everything() -> None:
    pod = Pod("p")
    carbon = poll(None, [pod], adapters=None)
    pod.serve(10.0, 30, "a")
    carbon = poll(carbon, [pod], adapters=None)
    assert served(carbon) == {"chat-v1": (pytest.approx(10.0), pytest.approx(0.01), 30)}
    written = json.dumps(carbon)
    assert "byAdapter" not in written and "unattributed" not in written  # the schema as it was


def test_an_adapter_loaded_at_run_time_is_no_version_and_not_the_bases() -> None:
    pod = Pod("p")
    carbon = poll(None, [pod])
    pod.serve(10.0, 30, "runtime-loaded")
    pod.serve(4.0, 4)
    carbon = poll(carbon, [pod])
    assert served(carbon) == {"chat-v1": (pytest.approx(4.0), pytest.approx(0.004), 4)}
    entry = next(e for e in carbon["byAdapter"] if e["adapter"] == "runtime-loaded")
    assert "modelVersion" not in entry and entry["tokens"] == 30


def test_a_baseline_without_adapter_figures_counts_them_from_the_next_reading() -> None:
    """A status written before adapters were metered (or whose schema dropped the figures):
    that poll's delta goes to the served version, as before adapters were metered; the pod's
    adapter totals set the origin, and what follows is split again, nothing counted twice."""
    pod = Pod("p")
    pod.serve(10.0, 30, "a")
    carbon = poll(None, [pod])
    for baseline in carbon["pods"]:
        for key in [k for k in baseline if k.startswith(("byAdapter", "unattributed"))]:
            del baseline[key]
    pod.serve(3.0, 3, "a")
    carbon = poll(carbon, [pod])
    assert served(carbon)["chat-a-v1"][2] == 30
    assert served(carbon)["chat-v1"] == (pytest.approx(3.0), pytest.approx(0.003), 3)
    pod.serve(2.0, 2, "a")
    carbon = poll(carbon, [pod])
    assert served(carbon)["chat-a-v1"] == (pytest.approx(12.0), pytest.approx(0.012), 32)
    assert carbon["tokens"] == 35 == sum(t for _, _, t in served(carbon).values())


def test_the_adapter_version_shows_its_own_tokens_emissions_and_amortised_grams() -> None:
    pod = Pod("p")
    carbon = poll(None, [pod])
    pod.serve(36.0, 40, "a")
    pod.serve(10.0, 10)
    carbon = poll(carbon, [pod])
    deployment = idep(
        "bot",
        modelVersion="chat-v1",
        adapters=[{"name": "a", "modelVersion": "chat-a-v1"}],
        status={"modelVersion": "chat-v1", "carbon": carbon},
    )
    totals = serving_totals("chat-a-v1", [], [deployment])
    assert totals["tokensServed"] == 40
    assert totals["servingEmissionsKg"] == pytest.approx(36.0 / 1e6)

    body = mv("chat-a-v1", "chat-a", 1, fmt="adapter")
    body["spec"]["trainingCarbon"] = {"energyKwh": "0.001", "emissionsKg": "0.0004"}
    status = plan_modelversion(body, ModelVersionWorld(deployments=[deployment]), SETTINGS, NOW)
    assert status.status is not None
    assert status.status["tokensServed"] == 40
    assert status.status["servingEmissionsKg"] == pytest.approx(36e-6)
    lifetime = 0.0004 + 36e-6
    assert status.status["lifetimeGramsPer1KTokens"] == pytest.approx(lifetime * 1e6 / 40)
