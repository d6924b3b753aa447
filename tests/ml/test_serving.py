"""The launcher serving the tiny model with real vLLM (CPU), driven with the official openai client.

One launcher process serves the whole module (API key from a mounted-style key file, dynamic
adapters on), so vLLM starts twice in all: once, and once more when the key rotates at the end.
Tests run in file order and share it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from serving_fixtures import (
    Server,
    carbon,
    make_adapters,
    processes_running,
    serving_config,
    wait_for,
)

from harness.runtime import run_runtime
from model_garden.api.contracts import ServedArtifact
from model_garden.serving.command import VLLM_MODULE

pytestmark = pytest.mark.ml

API_KEY = "test-key-7f3a"
ROTATED_KEY = "test-key-rotated-91c2"


@pytest.fixture(scope="module")
def adapters(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("adapters")
    return make_adapters(tiny_model, [root / "ad-one", root / "ad-two"])


@pytest.fixture(scope="module")
def server(
    tiny_model: Path, adapters: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("serving")
    config_path = root / "serving-config.json"
    srv = Server(config_path, root / "meter-state.json", root / "launcher.log", API_KEY)
    srv.write_config(
        serving_config(
            tiny_model,
            [("ad-one", adapters[0])],
            dynamic_adapters=True,  # the hot-add test below; needs the key
            api_key_file=root / "api-key",
        )
    )
    srv.start()
    yield srv
    code = srv.stop()
    print(f"vLLM start seconds: {srv.start_seconds}; launcher exit {code}")


@pytest.fixture(scope="module")
def client(server: Server) -> OpenAI:
    return OpenAI(base_url=f"{server.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=120)


def model_ids(client: OpenAI) -> list[str]:
    return [m.id for m in client.models.list()]


# -- endpoints ---------------------------------------------------------------------------------


def test_health_and_models(server: Server, client: OpenAI) -> None:
    assert httpx.get(f"{server.base_url}/health", timeout=5).status_code == 200
    models = client.models.list().data
    by_id = {m.id: m for m in models}
    assert set(by_id) == {"tiny", "ad-one"}
    assert getattr(by_id["ad-one"], "parent", None) == "tiny"


def test_completion_with_usage(client: OpenAI) -> None:
    result = client.completions.create(model="tiny", prompt="Hello, how are", max_tokens=8)
    assert result.model == "tiny"
    assert len(result.choices) == 1 and isinstance(result.choices[0].text, str)
    assert result.choices[0].finish_reason in ("length", "stop")
    assert result.usage is not None
    assert result.usage.prompt_tokens > 0 and 0 < result.usage.completion_tokens <= 8
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


def test_chat_completion_with_usage(client: OpenAI) -> None:
    result = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=8,
    )
    assert result.choices[0].message.role == "assistant"
    assert isinstance(result.choices[0].message.content, str)
    assert result.usage is not None and result.usage.prompt_tokens > 0
    assert result.usage.completion_tokens > 0


def test_streamed_chat_completion(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "Say hello"}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 2, "tokens should arrive in several chunks"
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish and finish[-1] in ("length", "stop")
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and usage[-1].completion_tokens > 0


# -- API key -----------------------------------------------------------------------------------


def test_api_key_is_required(server: Server, client: OpenAI) -> None:
    response = httpx.get(f"{server.base_url}/v1/models", timeout=10)
    assert response.status_code == 401
    no_key = httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": "tiny", "prompt": "hi", "max_tokens": 2},
        timeout=10,
    )
    assert no_key.status_code == 401
    wrong = OpenAI(base_url=f"{server.base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert client.completions.create(model="tiny", prompt="hi", max_tokens=2).usage is not None


def test_the_key_reaches_vllm_by_environment_not_argv(server: Server) -> None:
    port = f"--port {server.config.ports.api} "
    servers = {pid: c for pid, c in processes_running(VLLM_MODULE).items() if port in c + " "}
    assert servers, "no vLLM API server process found"
    for pid, cmdline in servers.items():
        assert API_KEY not in cmdline and "--api-key" not in cmdline
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"VLLM_API_KEY={API_KEY}".encode() in environ
        assert not any(e.startswith(b"MODEL_GARDEN_API_KEY=") for e in environ)
    # No process on the machine shows it: argv is readable by every user.
    everything = processes_running(API_KEY)
    assert not everything, everything


# -- LoRA --------------------------------------------------------------------------------------


def test_adapter_by_name(client: OpenAI) -> None:
    prompt = "Below is an instruction"
    base = client.completions.create(model="tiny", prompt=prompt, max_tokens=8, temperature=0)
    adapted = client.completions.create(model="ad-one", prompt=prompt, max_tokens=8, temperature=0)
    assert adapted.model == "ad-one"
    assert adapted.usage is not None and adapted.usage.completion_tokens > 0
    # A random (non-zero) LoRA changes the logits, so greedy outputs differ from the base's.
    assert adapted.choices[0].text != base.choices[0].text


def vllm_start_time(server: Server) -> float:
    text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("process_start_time_seconds "))
    return float(line.split()[1])


def test_hot_add_then_remove_adapter(server: Server, client: OpenAI, adapters: list[Path]) -> None:
    assert server.proc is not None
    launcher_pid, started = server.proc.pid, vllm_start_time(server)
    config = server.config
    server.write_config(
        config.model_copy(
            update={
                "adapters": [*config.adapters, ServedArtifact(name="ad-two", path=str(adapters[1]))]
            }
        )
    )
    wait_for(lambda: "ad-two" in model_ids(client), timeout=60)
    result = client.chat.completions.create(
        model="ad-two", messages=[{"role": "user", "content": "hi"}], max_tokens=4
    )
    assert result.model == "ad-two" and result.usage is not None

    server.write_config(config)  # back to ad-one only
    wait_for(lambda: "ad-two" not in model_ids(client), timeout=60)
    assert set(model_ids(client)) == {"tiny", "ad-one"}
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="ad-two", prompt="hi", max_tokens=2)
    # Neither the launcher nor vLLM restarted.
    assert server.proc is not None and server.proc.pid == launcher_pid
    assert vllm_start_time(server) == started


# -- bad requests ------------------------------------------------------------------------------


def assert_openai_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("error"), dict), body
    assert body["error"].get("message"), body


def test_bad_requests_get_openai_errors_and_server_stays_up(server: Server, client: OpenAI) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    url = f"{server.base_url}/v1/chat/completions"
    unknown = httpx.post(
        url,
        headers=headers,
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
        timeout=30,
    )
    assert_openai_error(unknown, 404)
    malformed = httpx.post(
        url, headers=headers, content=b'{"model": "tiny", "messages": [', timeout=30
    )
    assert 400 <= malformed.status_code < 500, malformed.text
    assert isinstance(malformed.json().get("error"), dict | list | str)
    too_long = httpx.post(
        f"{server.base_url}/v1/completions",
        headers=headers,
        json={"model": "tiny", "prompt": "hi", "max_tokens": 100_000},
        timeout=30,
    )
    assert_openai_error(too_long, 400)
    # The same through the official client: typed errors.
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt="x", max_tokens=100_000)
    # Still serving.
    assert httpx.get(f"{server.base_url}/health", timeout=5).status_code == 200
    assert client.completions.create(model="tiny", prompt="ok", max_tokens=2).usage is not None


# -- meter -------------------------------------------------------------------------------------


def tokens_of(doc: dict[str, Any]) -> int:
    return int(doc.get("promptTokens", 0)) + int(doc.get("generationTokens", 0))


def settled_carbon(server: Server) -> dict[str, Any]:
    """The meter's document once it has caught up with vLLM (two equal token counts in a row)."""
    previous = carbon(server.meter_url)
    while True:
        time.sleep(1.5)
        current = carbon(server.meter_url)
        if tokens_of(current) == tokens_of(previous):
            return current
        previous = current


def test_meter_counts_the_tokens_clients_saw(server: Server, client: OpenAI) -> None:
    before = settled_carbon(server)
    seen: list[dict[str, Any]] = [before]
    used = 0
    for i in range(3):
        r = client.completions.create(model="tiny", prompt=f"count {i}", max_tokens=6)
        assert r.usage is not None
        used += r.usage.total_tokens
        seen.append(carbon(server.meter_url))
    chat = client.chat.completions.create(
        model="ad-one", messages=[{"role": "user", "content": "hello"}], max_tokens=6
    )
    assert chat.usage is not None
    used += chat.usage.total_tokens
    stream = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "stream"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    stream_usage = [c.usage for c in stream if c.usage is not None]
    used += stream_usage[-1].total_tokens

    wait_for(lambda: tokens_of(carbon(server.meter_url)) >= tokens_of(before) + used, timeout=30)
    after = settled_carbon(server)
    seen.append(after)
    assert tokens_of(after) - tokens_of(before) == used
    assert int(after["requests"]) - int(before["requests"]) == 5

    for earlier, later in zip(seen, seen[1:], strict=False):
        assert later["energyJoules"] >= earlier["energyJoules"]
        assert later["emissionsGrams"] >= earlier["emissionsGrams"]
    assert after["energyJoules"] > before["energyJoules"]
    assert after["emissionsGrams"] > before["emissionsGrams"]
    assert after["activeEnergyJoules"] > before["activeEnergyJoules"]
    assert after["energyJoules"] == pytest.approx(
        after["activeEnergyJoules"] + after["idleEnergyJoules"]
    )
    assert after["method"] == "estimated"
    assert after["joulesPerToken"] > 0 and after["gramsPer1KTokens"] > 0
    assert after["country"] == "FRA" and after["gridIntensityGPerKwh"] > 0

    metrics = httpx.get(f"{server.meter_url}/metrics", timeout=10).text
    per_token = [
        line
        for line in metrics.splitlines()
        if line.startswith("model_garden_serving_joules_per_token{")
    ]
    assert (
        per_token and 'method="estimated"' in per_token[0] and float(per_token[0].split()[-1]) > 0
    )
    assert "model_garden_serving_energy_joules_total{" in metrics
    assert 'phase="idle"' in metrics and 'phase="active"' in metrics
    assert "model_garden_serving_emissions_grams_total{" in metrics
    assert "model_garden_serving_grid_intensity_grams_per_kwh{" in metrics


# -- batch -------------------------------------------------------------------------------------


def batch_lines(n: int) -> list[dict[str, Any]]:
    lines = []
    for i in range(n):
        model = "ad-one" if i % 5 == 4 else "tiny"
        if i % 2:
            lines.append(
                {
                    "custom_id": f"req-{i:02d}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {
                        "model": model,
                        "messages": [{"role": "user", "content": f"question {i}"}],
                        "max_tokens": 5,
                    },
                }
            )
        else:
            lines.append(
                {
                    "custom_id": f"req-{i:02d}",
                    "method": "POST",
                    "url": "/v1/completions",
                    "body": {"model": model, "prompt": f"prompt {i}", "max_tokens": 5},
                }
            )
    return lines


def test_batch_of_20_through_the_server(server: Server, tmp_path: Path) -> None:
    lines = batch_lines(20)
    source = tmp_path / "batch.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.jsonl"
    env_key = "MODEL_GARDEN_API_KEY"
    os.environ[env_key] = API_KEY
    try:
        proc = run_runtime(
            [
                "-m",
                "model_garden.serving.batch",
                str(source),
                str(out),
                "--server",
                server.base_url,
                "--meter",
                server.meter_url,
                "--concurrency",
                "4",
            ],
            timeout=300,
        )
    finally:
        os.environ.pop(env_key, None)
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["custom_id"] for r in results] == [line["custom_id"] for line in lines]
    assert len({r["id"] for r in results}) == 20
    for result, line in zip(results, lines, strict=True):
        assert result["error"] is None
        assert result["response"]["status_code"] == 200
        body = result["response"]["body"]
        assert body["model"] == line["body"]["model"]
        assert body["usage"]["completion_tokens"] > 0
    usage = sum(r["response"]["body"]["usage"]["total_tokens"] for r in results)

    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == json.loads((tmp_path / "out.jsonl.summary.json").read_text())
    assert summary["requests"] == 20 and summary["succeeded"] == 20 and summary["failed"] == 0
    assert summary["promptTokens"] + summary["completionTokens"] == usage
    carbon_doc = summary["carbon"]
    assert carbon_doc["promptTokens"] + carbon_doc["generationTokens"] == usage
    assert carbon_doc["energyJoules"] > 0 and carbon_doc["emissionsGrams"] > 0
    assert carbon_doc["method"] == "estimated"
    assert carbon_doc["joulesPerToken"] > 0


# -- key rotation (last: it restarts the shared server's vLLM) ----------------------------------


def test_a_rotated_key_restarts_vllm_and_keeps_the_meter_totals(server: Server) -> None:
    assert server.proc is not None and server.config.api_key_file
    launcher_pid, started = server.proc.pid, vllm_start_time(server)
    before = settled_carbon(server)
    Path(server.config.api_key_file).write_text(ROTATED_KEY + "\n")  # the kubelet's update

    def new_key_works() -> bool:
        try:
            headers = {"Authorization": f"Bearer {ROTATED_KEY}"}
            return httpx.get(f"{server.base_url}/v1/models", headers=headers, timeout=5).is_success
        except httpx.HTTPError:
            return False

    wait_for(new_key_works, timeout=360, interval=2)
    assert server.proc is not None and server.proc.pid == launcher_pid  # same pod, same launcher
    assert vllm_start_time(server) != started
    old = httpx.get(
        f"{server.base_url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )
    assert old.status_code == 401
    restarted = carbon(server.meter_url)
    assert tokens_of(restarted) == tokens_of(before)
    assert restarted["energyJoules"] >= before["energyJoules"]
    assert restarted["requests"] == before["requests"]

    client = OpenAI(base_url=f"{server.base_url}/v1", api_key=ROTATED_KEY, max_retries=0)
    assert set(model_ids(client)) == {"tiny", "ad-one"}  # the adapters as the config lists them
    r = client.completions.create(model="tiny", prompt="after the rotation", max_tokens=5)
    assert r.usage is not None
    wait_for(
        lambda: tokens_of(carbon(server.meter_url)) >= tokens_of(before) + r.usage.total_tokens,
        timeout=30,
    )
    after = settled_carbon(server)
    assert tokens_of(after) == tokens_of(before) + r.usage.total_tokens
    assert after["energyJoules"] > before["energyJoules"]
    metrics = httpx.get(f"{server.meter_url}/metrics", timeout=10).text
    restarts = next(
        line
        for line in metrics.splitlines()
        if line.startswith("model_garden_serving_vllm_restarts_total")
    )
    assert float(restarts.split()[-1]) >= 1
    assert server.stop() == 0  # SIGTERM is forwarded; the launcher exits with vLLM's status
