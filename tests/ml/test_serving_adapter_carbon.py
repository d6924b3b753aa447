"""Per-adapter serving carbon on a real vLLM (CPU) serving the tiny model with two LoRA adapters.

Requests to adapter A alone, then B alone, then both at once, through the official openai
client: the meter must give A and B exactly the tokens the client's ``usage`` reported for
their requests, and put the ticks in which both ran in the shared bucket, so that the parts add
up to the tokens served (docs/carbon.md, "Per adapter").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from serving_fixtures import Server, carbon, make_adapters, serving_config, wait_for

pytestmark = pytest.mark.ml

TICK_S = 1.0  # the launcher's meter interval


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("adapter-carbon")
    a, b = make_adapters(tiny_model, [root / "ad-a", root / "ad-b"], seed=3)
    srv = Server(root / "config.json", root / "meter-state.json", root / "launcher.log", None)
    srv.write_config(serving_config(tiny_model, [("ad-a", a), ("ad-b", b)]))
    srv.start()
    yield srv
    srv.stop()


def figures(server: Server) -> dict[str, Any]:
    doc = carbon(server.meter_url)
    tokens = {name: int(a["tokens"]) for name, a in (doc.get("byAdapter") or {}).items()}
    tokens["shared"] = int(doc.get("unattributedTokens") or 0)
    tokens["all"] = int(doc["promptTokens"]) + int(doc["generationTokens"])  # type: ignore[call-overload]
    return tokens


def settled(server: Server, expected_all: int) -> dict[str, Any]:
    """The meter's figures once it counted ``expected_all`` tokens and ticked past the last
    request (so the next phase starts with no adapter listed)."""
    wait_for(lambda: figures(server)["all"] >= expected_all, timeout=30)
    time.sleep(3 * TICK_S)
    return figures(server)


def ask(client: OpenAI, model: str, i: int) -> int:
    r = client.completions.create(model=model, prompt=f"tell me {i}", max_tokens=8)
    assert r.usage is not None
    return int(r.usage.total_tokens)


def delta(after: dict[str, Any], before: dict[str, Any], key: str) -> int:
    return int(after.get(key, 0)) - int(before.get(key, 0))


def test_each_adapter_gets_exactly_the_tokens_its_clients_saw(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    client = OpenAI(base_url=f"{server.base_url}/v1", api_key="none", max_retries=0, timeout=120)
    start = settled(server, 0)

    used_a = sum(ask(client, "ad-a", i) for i in range(4))
    after_a = settled(server, start["all"] + used_a)
    assert delta(after_a, start, "ad-a") == used_a
    assert delta(after_a, start, "ad-b") == 0 and delta(after_a, start, "shared") == 0

    used_b = sum(ask(client, "ad-b", i) for i in range(3))
    after_b = settled(server, after_a["all"] + used_b)
    assert delta(after_b, after_a, "ad-b") == used_b
    assert delta(after_b, after_a, "ad-a") == 0 and delta(after_b, after_a, "shared") == 0

    with ThreadPoolExecutor(4) as pool:
        used = list(pool.map(lambda i: ask(client, ("ad-a", "ad-b")[i % 2], i), range(8)))
    after_mixed = settled(server, after_b["all"] + sum(used))
    parts = ("ad-a", "ad-b", "shared", "tiny")
    assert sum(delta(after_mixed, after_b, k) for k in parts) == sum(used)
    assert delta(after_mixed, after_b, "shared") > 0, "A and B ran in the same ticks"
    assert sum(after_mixed.get(k, 0) for k in parts) == after_mixed["all"]

    page = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    assert "vllm:lora_requests_info{" in page
    meter = httpx.get(f"{server.meter_url}/metrics", timeout=10).text
    (line,) = [
        x
        for x in meter.splitlines()
        if x.startswith("model_garden_serving_adapter_tokens_total{") and 'adapter="ad-a"' in x
    ]
    assert float(line.split()[-1]) == after_mixed["ad-a"]
    # kept for bench/carbon_overhead.py (a page recorded from this vLLM)
    (tmp_path_factory.getbasetemp() / "vllm_metrics_lora.txt").write_text(page)
