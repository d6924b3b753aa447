"""Per-adapter attribution on built vLLM /metrics pages (issue 13, item 5): one adapter listed
in a tick gets that tick exactly, none is the base model's, several go to the shared bucket, and
the parts add up to the active totals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from model_garden.api.common import CarbonMethod
from model_garden.serving.accounting import Accountant, VllmSnapshot
from model_garden.serving.adapter_carbon import (
    LoraSeries,
    adapters_seen,
    lora_series,
    newest,
    tick_owner,
)
from model_garden.serving.energy import ComponentEnergy, EnergySource, Reading
from model_garden.serving.meter import Meter

INTENSITY = 3600.0  # g/kWh: 1 J = 1 mg CO2e


def page(
    prompt: int,
    gen: int,
    lora: list[tuple[str, str, float]] | None = None,
    running: int = 0,
    model: str = "tiny",
) -> str:
    """A /metrics page as vLLM 0.32 writes it: counters by model_name, and one
    ``vllm:lora_requests_info`` series per (running, waiting) combination ever current."""
    lines = [
        "# TYPE vllm:num_requests_running gauge",
        f'vllm:num_requests_running{{engine="0",model_name="{model}"}} {running}.0',
        f'vllm:num_requests_waiting{{engine="0",model_name="{model}"}} 0.0',
        f'vllm:prompt_tokens_total{{engine="0",model_name="{model}"}} {prompt}.0',
        f'vllm:generation_tokens_total{{engine="0",model_name="{model}"}} {gen}.0',
        f'vllm:request_success_total{{engine="0",finished_reason="length",model_name="{model}"}} 0',
        "process_start_time_seconds 100.0",
        "# HELP vllm:lora_requests_info Running stats on lora requests.",
        "# TYPE vllm:lora_requests_info gauge",
    ]
    for run, wait, at in lora or []:
        lines.append(
            f'vllm:lora_requests_info{{max_lora="2",running_lora_adapters="{run}",'
            f'waiting_lora_adapters="{wait}"}} {at!r}'
        )
    return "\n".join(lines) + "\n"


def test_a_page_gives_the_lora_series_newest_first_and_the_base_name() -> None:
    snap = VllmSnapshot.from_page(
        page(5, 7, [("", "", 1000.0), ("a,b", "c", 1002.5), ("b", "", 1001.0)], running=2)
    )
    assert (snap.prompt_tokens, snap.generation_tokens, snap.in_flight) == (5, 7, 2)
    assert snap.model_name == "tiny"
    assert snap.lora == (
        LoraSeries(frozenset({"a", "b", "c"}), 1002.5),
        LoraSeries(frozenset({"b"}), 1001.0),
        LoraSeries(frozenset(), 1000.0),
    )
    assert newest(snap.lora) == LoraSeries(frozenset({"a", "b", "c"}), 1002.5)
    assert VllmSnapshot.from_page(page(1, 1)).lora == ()  # LoRA off: no gauge


SERIES = lora_series(
    [
        ({"running_lora_adapters": "a", "waiting_lora_adapters": ""}, 10.0),
        ({"running_lora_adapters": "", "waiting_lora_adapters": "b"}, 20.0),
        ({"running_lora_adapters": "", "waiting_lora_adapters": ""}, 30.0),
    ]
)


@pytest.mark.parametrize(
    ("since", "at_start", "seen"),
    [
        pytest.param(None, [], {"a", "b"}, id="first scrape: every series counts"),
        pytest.param(15.0, [], {"b"}, id="only series set since the last scrape"),
        pytest.param(25.0, [], set(), id="no adapter since: the base model's"),
        pytest.param(25.0, ["a"], {"a"}, id="listed at the start: may finish in the first step"),
        pytest.param(30.0, [], set(), id="nothing new"),
    ],
)
def test_adapters_seen(since: float | None, at_start: list[str], seen: set[str]) -> None:
    assert adapters_seen(SERIES, since, at_start) == frozenset(seen)


@pytest.mark.parametrize(
    ("seen", "owner"),
    [
        pytest.param(set(), "tiny", id="none listed: base"),
        pytest.param({"a"}, "a", id="one adapter"),
        pytest.param({"a", "b"}, None, id="mixed: shared"),
    ],
)
def test_tick_owner(seen: set[str], owner: str | None) -> None:
    assert tick_owner(frozenset(seen), "tiny") == owner


def run_sequence(acc: Accountant) -> None:
    """A alone, idle, B alone, A and B together, B finishing, the base model: (J, tokens) per
    tick in the comments; the LoRA series carry forward as vLLM keeps them."""
    a0, b0 = ("a", "", 1001.0), ("b", "", 1004.0)
    idle0 = ("", "", 1002.0)
    ticks: list[tuple[float, str]] = [
        (0.0, page(0, 0)),  # origin
        (10.0, page(20, 10, [a0], running=1)),  # a: 10 J, 30 tokens
        (15.0, page(25, 15, [("a", "", 1001.5), idle0])),  # a finishes: 5 J, 10 tokens
        (35.0, page(25, 15, [("a", "", 1001.5), idle0])),  # idle: 20 J
        (43.0, page(30, 22, [("a", "", 1001.5), idle0, b0], running=1)),  # b: 8 J, 12
        (
            55.0,  # a and b: 12 J, 20 tokens, shared; b still running at the end
            page(
                40,
                32,
                [("a", "", 1001.5), ("", "", 1005.0), ("a,b", "", 1006.0), ("b", "", 1006.5)],
                running=1,
            ),
        ),
        (
            58.0,  # b's last step: listed at the start only: 3 J, 4 tokens to b
            page(
                42,
                34,
                [("a", "", 1001.5), ("", "", 1007.0), ("a,b", "", 1006.0), ("b", "", 1006.5)],
            ),
        ),
        (
            67.0,  # the base model: no series set since: 9 J, 9 tokens
            page(
                47,
                38,
                [("a", "", 1001.5), ("", "", 1007.0), ("a,b", "", 1006.0), ("b", "", 1006.5)],
                running=1,
            ),
        ),
    ]
    for i, (joules, text) in enumerate(ticks):
        acc.tick({"cpu": joules}, VllmSnapshot.from_page(text), now=float(i))


def test_ticks_go_to_one_adapter_the_base_or_the_shared_bucket_and_add_up() -> None:
    acc = Accountant(INTENSITY)
    run_sequence(acc)
    doc = acc.carbon()
    got = {name: (a.energy_joules, a.tokens) for name, a in doc.by_adapter.items()}
    assert got == {
        "a": (pytest.approx(15.0), 40),
        "b": (pytest.approx(11.0), 16),
        "tiny": (pytest.approx(9.0), 9),
    }
    assert doc.base_model == "tiny"
    assert (doc.unattributed_tokens, doc.unattributed_energy_joules) == (20, pytest.approx(12.0))
    assert doc.by_adapter["a"].emissions_grams == pytest.approx(0.015)
    assert doc.unattributed_emissions_grams == pytest.approx(0.012)
    # The parts are the active totals; idle energy is in none of them.
    assert doc.idle_energy_joules == pytest.approx(20.0)
    parts = [*doc.by_adapter.values()]
    assert sum(a.tokens for a in parts) + doc.unattributed_tokens == doc.tokens == 85
    assert sum(a.energy_joules for a in parts) + doc.unattributed_energy_joules == pytest.approx(
        doc.active_energy_joules
    )
    assert sum(a.emissions_grams for a in parts) + doc.unattributed_emissions_grams == (
        pytest.approx(doc.active_emissions_grams)
    )
    wire = doc.model_dump(by_alias=True)
    assert wire["byAdapter"]["a"] == {"tokens": 40, "energyJoules": 15.0, "emissionsGrams": 0.015}
    assert wire["unattributedTokens"] == 20 and wire["baseModel"] == "tiny"


def test_without_lora_every_active_tick_is_the_base_models() -> None:
    acc = Accountant(INTENSITY)
    acc.tick({"cpu": 0.0}, VllmSnapshot.from_page(page(0, 0, model="m")), now=0)
    acc.tick({"cpu": 4.0}, VllmSnapshot.from_page(page(3, 2, model="m")), now=1)
    acc.tick({"cpu": 9.0}, VllmSnapshot.from_page(page(3, 2, model="m")), now=2)  # idle
    doc = acc.carbon()
    assert {n: (a.tokens, a.energy_joules) for n, a in doc.by_adapter.items()} == {"m": (5, 4.0)}
    assert doc.unattributed_tokens == 0


def test_the_lora_origin_survives_a_meter_restart(tmp_path: Path) -> None:
    """Without the saved ``lora_seen_at`` the restarted meter would take every old series for
    new and put b's tick in the shared bucket."""
    path = tmp_path / "meter.json"
    acc = Accountant.resume(path, intensity_g_per_kwh=INTENSITY)
    run_sequence(acc)
    acc.save()
    again = Accountant.resume(path, intensity_g_per_kwh=INTENSITY)
    old = [("a", "", 1001.5), ("", "", 1007.0), ("a,b", "", 1006.0), ("b", "", 1006.5)]
    again.tick({"cpu": 500.0}, VllmSnapshot.from_page(page(47, 38, old)), now=10)  # origin
    again.tick(
        {"cpu": 507.0},
        VllmSnapshot.from_page(page(50, 40, [*old, ("b", "", 1010.0), ("", "", 1011.0)])),
        now=11,
    )
    doc = again.carbon()
    assert (doc.by_adapter["b"].tokens, doc.by_adapter["b"].energy_joules) == (21, 18.0)
    assert doc.unattributed_tokens == 20 and doc.by_adapter["a"].tokens == 40


class _Pages:
    """A recorded vLLM /metrics page served over HTTP, so the meter's real scrape reads it."""

    def __init__(self) -> None:
        self.text = page(0, 0)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = pages.text.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def vllm_page() -> Iterator[tuple[_Pages, str]]:
    pages = _Pages()
    server = ThreadingHTTPServer(("127.0.0.1", 0), pages.handler())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield pages, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _ScriptedEnergy:
    """An energy reader fed by a fixture (the cumulative joules of each tick), so the exported
    figures are exact; the meter's scrape and accounting are the real ones."""

    def __init__(self, joules: list[float]) -> None:
        self.joules = iter(joules)

    def read(self) -> Reading:
        return {"cpu": ComponentEnergy(next(self.joules), CarbonMethod.ESTIMATED, "fixture")}


def test_the_meter_exports_adapter_series(vllm_page: tuple[_Pages, str]) -> None:
    pages, url = vllm_page
    source = EnergySource([_ScriptedEnergy([0.0, 10.0, 20.0])], primary="cpu")
    meter = Meter(url, source, Accountant(INTENSITY), "bot", "ns", "table")
    meter.tick()
    pages.text = page(6, 4, [("a", "", 1001.0), ("", "", 1002.0)])
    meter.tick()  # 10 J, 10 tokens, a alone
    pages.text = page(9, 7, [("a", "", 1001.0), ("", "", 1002.0), ("a,b", "", 1003.0)])
    meter.tick()  # 10 J, 6 tokens, shared
    samples = {
        (s.name, s.labels.get("adapter")): (s.labels, s.value)
        for family in text_string_to_metric_families(generate_latest(meter.registry).decode())
        for s in family.samples
        if "adapter" in s.name or "unattributed" in s.name
    }
    ident = {"namespace": "ns", "deployment": "bot"}
    assert samples[("model_garden_serving_adapter_tokens_total", "a")] == (
        {**ident, "adapter": "a"},
        10.0,
    )
    energy = samples[("model_garden_serving_adapter_energy_joules_total", "a")]
    assert energy == ({**ident, "adapter": "a", "method": "estimated"}, 10.0)
    grams = samples[("model_garden_serving_adapter_emissions_grams_total", "a")][1]
    assert grams == pytest.approx(0.01)
    assert samples[("model_garden_serving_unattributed_tokens_total", None)] == (ident, 6.0)
    assert samples[("model_garden_serving_unattributed_energy_joules_total", None)][1] == 10.0
