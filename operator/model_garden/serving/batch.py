"""Batch inference: ``python -m model_garden.serving.batch INPUT.jsonl OUTPUT.jsonl ...``.

Runs a JSONL file of OpenAI-format requests and writes the OpenAI Batch output format (one line
per request, in input order, ``custom_id`` kept), plus a summary with the batch's energy and
emissions. Two engines:

- ``--server URL``: through a running OpenAI server (ours, with ``--meter URL`` for the pod's
  measured or estimated energy over the batch); concurrent requests, results reordered.
- ``--model PATH`` or ``--config FILE``: vLLM's offline engine in this process, the energy of
  this process tree estimated (or measured) by the meter's energy sources.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from model_garden.api.contracts import ServedArtifact, ServingCarbon, ServingConfig, read_document
from model_garden.carbon.grid import JOULES_PER_KWH, grid_intensity

from .batch_format import (
    BatchInputError,
    BatchRequest,
    BatchResult,
    read_requests,
    summary,
    usage_totals,
    write_results,
)
from .command import effective_dtype, resolve_device
from .energy import Reading, open_energy_source

log = logging.getLogger("model_garden.serving.batch")


# -- through a server -------------------------------------------------------------------------


def run_on_server(
    requests: list[BatchRequest], server: str, api_key: str | None, concurrency: int
) -> list[BatchResult]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    base = server.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    with httpx.Client(base_url=base, headers=headers, timeout=600.0) as client:

        def one(request: BatchRequest) -> BatchResult:
            try:
                response = client.post(request.url, json=request.body)
            except httpx.HTTPError as exc:
                return BatchResult(
                    request.custom_id,
                    error={"code": "connection_error", "message": str(exc)},
                )
            try:
                body = response.json()
            except ValueError:
                body = {"error": {"message": response.text[:1000]}}
            return BatchResult(request.custom_id, status_code=response.status_code, body=body)

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return list(pool.map(one, requests))  # map keeps the input order


def meter_carbon(meter: str) -> ServingCarbon:
    response = httpx.get(f"{meter.rstrip('/')}/carbon", timeout=10)
    response.raise_for_status()
    return ServingCarbon.model_validate(response.json())


def carbon_delta(before: ServingCarbon, after: ServingCarbon) -> ServingCarbon:
    """The meter's figures over the batch: all energy in between counts (the batch caused it)."""
    energy = max(0.0, after.energy_joules - before.energy_joules)
    active = max(0.0, after.active_energy_joules - before.active_energy_joules)
    grams = max(0.0, after.emissions_grams - before.emissions_grams)
    active_grams = min(
        grams, max(0.0, after.active_emissions_grams - before.active_emissions_grams)
    )
    prompt = max(0, after.prompt_tokens - before.prompt_tokens)
    generation = max(0, after.generation_tokens - before.generation_tokens)
    tokens = prompt + generation
    return ServingCarbon(
        energy_joules=energy,
        active_energy_joules=active,
        idle_energy_joules=max(0.0, energy - active),
        emissions_grams=grams,
        active_emissions_grams=active_grams,
        idle_emissions_grams=max(0.0, grams - active_grams),
        prompt_tokens=prompt,
        generation_tokens=generation,
        requests=max(0, after.requests - before.requests),
        joules_per_token=energy / tokens if tokens else None,
        grams_per_1k_tokens=grams * 1000 / tokens if tokens else None,
        grid_intensity_g_per_kwh=after.grid_intensity_g_per_kwh,
        country=after.country,
        region=after.region,
        grid_source=after.grid_source,
        grid_time=after.grid_time,
        method=after.method,
    )


def wait_meter_caught_up(
    meter: str, before: ServingCarbon, tokens: int, timeout: float
) -> ServingCarbon:
    """The meter scrapes on its own clock: wait until it has seen the batch's tokens."""
    deadline = time.monotonic() + timeout
    after = meter_carbon(meter)
    while after.tokens - before.tokens < tokens and time.monotonic() < deadline:
        time.sleep(0.5)
        after = meter_carbon(meter)
    return after


# -- vLLM's offline engine --------------------------------------------------------------------

SAMPLING_KEYS = (
    "n",
    "temperature",
    "top_p",
    "top_k",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "min_tokens",
    "logprobs",
)


def sampling_kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI request fields -> vLLM SamplingParams keyword arguments."""
    kwargs = {k: body[k] for k in SAMPLING_KEYS if body.get(k) is not None}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if kwargs.get("logprobs") is True:
        kwargs["logprobs"] = body.get("top_logprobs") or 1
    elif kwargs.get("logprobs") is False:
        kwargs.pop("logprobs")
    return kwargs


def openai_body(request: BatchRequest, model: str, output: Any) -> dict[str, Any]:
    """An OpenAI response body from a vLLM RequestOutput."""
    chat = request.url.endswith("/chat/completions")
    choices = []
    completion_tokens = 0
    for index, completion in enumerate(output.outputs):
        completion_tokens += len(completion.token_ids)
        choice: dict[str, Any] = {"index": index, "finish_reason": completion.finish_reason}
        if chat:
            choice["message"] = {"role": "assistant", "content": completion.text}
        else:
            choice["text"] = completion.text
            choice["logprobs"] = None
        choices.append(choice)
    prompt_tokens = len(output.prompt_token_ids or [])
    return {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error_result(request: BatchRequest, status: int, kind: str, message: str) -> BatchResult:
    return BatchResult(
        request.custom_id,
        status_code=status,
        body={"error": {"message": message, "type": kind, "param": None, "code": status}},
    )


def run_offline(
    requests: list[BatchRequest], config: ServingConfig, ready: Callable[[], None]
) -> list[BatchResult]:
    """Every request through one vLLM ``LLM`` in this process (LoRA adapters by model name);
    ``ready`` is called once the engine has started, to split start-up from the batch's energy."""
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    engine = config.spec.engine
    device = resolve_device(config.device)
    if device == "cpu":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    kwargs: dict[str, Any] = {
        "model": config.model.path,
        "served_model_name": config.model.name,
        "dtype": effective_dtype(str(engine.dtype), device),
        "enable_lora": True,
        "max_lora_rank": engine.max_lora_rank,
        "max_loras": engine.max_loras,
        "enforce_eager": device == "cpu",
    }
    if engine.max_model_len:
        kwargs["max_model_len"] = engine.max_model_len
    if device == "cuda":
        kwargs["gpu_memory_utilization"] = float(engine.gpu_memory_utilization)
        kwargs["tensor_parallel_size"] = engine.tensor_parallel_size
    llm = LLM(**kwargs)
    ready()
    adapters = {a.name: (i + 1, a) for i, a in enumerate(config.adapters)}
    max_len = engine.max_model_len or llm.llm_engine.model_config.max_model_len
    results: dict[int, BatchResult] = {}
    # Group by (endpoint, adapter) so each group is one batched engine call.
    groups: dict[tuple[str, str], list[tuple[int, BatchRequest]]] = {}
    for index, request in enumerate(requests):
        model = str(request.body.get("model"))
        if model != config.model.name and model not in adapters:
            results[index] = error_result(
                request, 404, "NotFoundError", f"The model `{model}` does not exist."
            )
            continue
        try:
            params = SamplingParams(**sampling_kwargs(request.body))
        except (TypeError, ValueError) as exc:
            results[index] = error_result(request, 400, "BadRequestError", str(exc))
            continue
        if params.max_tokens is not None and params.max_tokens > max_len:
            results[index] = error_result(
                request,
                400,
                "BadRequestError",
                f"max_tokens={params.max_tokens} exceeds the context length {max_len}",
            )
            continue
        groups.setdefault((request.url, model), []).append((index, request))
    for (url, model), members in groups.items():
        lora = None
        if model in adapters:
            lora_id, adapter = adapters[model]
            lora = LoRARequest(adapter.name, lora_id, adapter.path)
        params_list = [SamplingParams(**sampling_kwargs(r.body)) for _, r in members]
        if url.endswith("/chat/completions"):
            outputs = llm.chat(
                [r.body["messages"] for _, r in members],
                params_list,
                lora_request=lora,
                use_tqdm=False,
            )
        else:
            outputs = llm.generate(
                [r.body["prompt"] for _, r in members],
                params_list,
                lora_request=lora,
                use_tqdm=False,
            )
        for (index, request), output in zip(members, outputs, strict=True):
            results[index] = BatchResult(
                request.custom_id, status_code=200, body=openai_body(request, model, output)
            )
    return [results[i] for i in range(len(requests))]


@dataclass
class Startup:
    seconds: float = 0.0
    joules: float = 0.0


def _joules_between(first: Reading, last: Reading) -> float:
    return sum(max(0.0, e.joules - first[c].joules) for c, e in last.items() if c in first)


def measure(
    run: Callable[[Callable[[], None]], list[BatchResult]],
    country: str,
    region: str | None,
    pid: int | None,
) -> tuple[list[BatchResult], ServingCarbon, float, Startup]:
    """Run the batch while metering process tree ``pid`` (None: this cgroup or machine).

    ``run`` gets a ``ready`` callback: what comes before it (an engine start) is reported as
    start-up, apart from the batch's own energy, so per-token figures are not inflated by it.
    """
    source = open_energy_source("auto", pid=pid)
    first = source.read()
    started = time.monotonic()
    startup = Startup()

    def ready() -> None:
        nonlocal first, started
        reading = source.read()
        now = time.monotonic()
        startup.joules, startup.seconds = _joules_between(first, reading), now - started
        first, started = reading, now

    results = run(ready)
    duration = time.monotonic() - started
    last = source.read()
    joules = _joules_between(first, last)
    grid = grid_intensity(country, region)
    grams = joules / JOULES_PER_KWH * grid.g_per_kwh
    prompt, completion = usage_totals(results)
    tokens = prompt + completion
    carbon = ServingCarbon(
        energy_joules=joules,
        active_energy_joules=joules,
        emissions_grams=grams,
        active_emissions_grams=grams,
        prompt_tokens=prompt,
        generation_tokens=completion,
        requests=sum(1 for r in results if r.status_code == 200),
        joules_per_token=joules / tokens if tokens else None,
        grams_per_1k_tokens=grams * 1000 / tokens if tokens else None,
        grid_intensity_g_per_kwh=grid.g_per_kwh,
        country=grid.country,
        region=grid.region,
        grid_source=grid.source,
        grid_time=grid.time,
        method=source.method(last),
    )
    return results, carbon, duration, startup


# -- CLI --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m model_garden.serving.batch", description=__doc__
    )
    parser.add_argument("input", type=Path, help="JSONL of OpenAI batch requests.")
    parser.add_argument("output", type=Path, help="Where the OpenAI batch output JSONL goes.")
    parser.add_argument(
        "--summary", type=Path, default=None, help="Summary JSON (default: OUTPUT.summary.json)."
    )
    engine = parser.add_mutually_exclusive_group(required=True)
    engine.add_argument("--server", help="Base URL of a running OpenAI server.")
    engine.add_argument(
        "--config", type=Path, help="A ServingConfig: offline engine with its settings."
    )
    engine.add_argument("--model", type=Path, help="A model directory: offline engine.")
    parser.add_argument("--served-name", default=None, help="Model name requests use (--model).")
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="LoRA adapter (--model).",
    )
    parser.add_argument("--meter", default=None, help="The server's meter URL (--server).")
    parser.add_argument("--api-key-env", default="MODEL_GARDEN_API_KEY")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--country", default="USA")
    parser.add_argument("--region", default=None)
    return parser.parse_args(argv)


def offline_config(args: argparse.Namespace) -> ServingConfig:
    if args.config:
        return read_document(ServingConfig, args.config)
    from model_garden.api.contracts import Identity
    from model_garden.api.inferencedeployment import Engine, InferenceDeploymentSpec

    adapters = []
    for item in args.adapter:
        name, sep, path = item.partition("=")
        if not sep:
            raise ValueError(f"--adapter {item!r}: expected NAME=PATH")
        adapters.append(ServedArtifact(name=name, path=path))
    return ServingConfig(
        deployment=Identity(name="batch"),
        spec=InferenceDeploymentSpec(
            model_version="batch", engine=Engine(max_model_len=args.max_model_len)
        ),
        model=ServedArtifact(name=args.served_name or args.model.name, path=str(args.model)),
        adapters=adapters,
        country=args.country,
        region=args.region,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s batch %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        requests = read_requests(args.input)
    except BatchInputError as exc:
        print(f"{args.input}: invalid batch input:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{args.input}: {exc}", file=sys.stderr)
        return 2
    startup: Startup | None = None
    if args.server:
        api_key = os.environ.get(args.api_key_env) or None
        if args.meter:
            before = meter_carbon(args.meter)
            started = time.monotonic()
            results = run_on_server(requests, args.server, api_key, args.concurrency)
            duration = time.monotonic() - started
            prompt, completion = usage_totals(results)
            after = wait_meter_caught_up(args.meter, before, prompt + completion, timeout=30)
            carbon, source = carbon_delta(before, after), "meter"
        else:
            results, carbon, duration, _ = measure(
                lambda ready: run_on_server(requests, args.server, api_key, args.concurrency),
                args.country,
                args.region,
                pid=None,
            )
            source = "machine"
    else:
        config = offline_config(args)
        results, carbon, duration, startup = measure(
            lambda ready: run_offline(requests, config, ready),
            config.country,
            config.region,
            pid=os.getpid(),
        )
        source = "offline-engine"
    write_results(args.output, results)
    doc = summary(results, carbon, duration, source)
    if startup is not None:
        intensity = carbon.grid_intensity_g_per_kwh or 0.0
        doc["engineStartup"] = {
            "seconds": round(startup.seconds, 3),
            "energyJoules": startup.joules,
            "emissionsGrams": startup.joules / JOULES_PER_KWH * intensity,
        }
    summary_path = args.summary or args.output.with_name(args.output.name + ".summary.json")
    summary_path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    print(json.dumps(doc))
    return 0 if doc["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
