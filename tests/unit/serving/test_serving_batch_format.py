"""OpenAI batch input validation, output format and summary (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_garden.api.contracts import ServingCarbon
from model_garden.serving.batch import carbon_delta, sampling_kwargs
from model_garden.serving.batch_format import (
    BatchInputError,
    BatchResult,
    parse_requests,
    summary,
    write_results,
)


def line(custom_id: str, url: str = "/v1/completions", **body: object) -> str:
    body.setdefault("model", "tiny")
    if url == "/v1/completions":
        body.setdefault("prompt", "hi")
    else:
        body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def test_parse_keeps_order_and_skips_blank_lines() -> None:
    text = "\n".join([line("b"), "", line("a", "/v1/chat/completions"), line("c")]) + "\n"
    requests = parse_requests(text)
    assert [r.custom_id for r in requests] == ["b", "a", "c"]
    assert [r.line for r in requests] == [1, 3, 4]


def test_every_bad_line_is_named() -> None:
    text = "\n".join(
        [
            line("ok"),
            "{broken",
            json.dumps({"custom_id": "x", "url": "/v1/embeddings", "body": {"model": "m"}}),
            line("ok"),
            json.dumps({"custom_id": "y", "url": "/v1/chat/completions", "body": {"model": "m"}}),
            line("z", stream=True),
            json.dumps({"url": "/v1/completions", "body": {}}),
        ]
    )
    with pytest.raises(BatchInputError) as info:
        parse_requests(text)
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == [
        "line 2",
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
    ]
    assert "used twice" in problems[2] and "messages" in problems[3] and "stream" in problems[4]
    with pytest.raises(BatchInputError, match="no request"):
        parse_requests("\n\n")


def test_output_lines_follow_the_openai_batch_format(tmp_path: Path) -> None:
    results = [
        BatchResult(
            "a", 200, {"id": "cmpl-1", "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
        ),
        BatchResult("b", 404, {"error": {"message": "no such model"}}),
        BatchResult("c", error={"code": "connection_error", "message": "refused"}),
    ]
    out = tmp_path / "out.jsonl"
    write_results(out, results)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == ["a", "b", "c"]
    assert lines[0]["id"].startswith("batch_req_")
    assert lines[0]["response"] == {
        "status_code": 200,
        "request_id": "cmpl-1",
        "body": results[0].body,
    }
    assert lines[0]["error"] is None
    assert lines[1]["response"]["status_code"] == 404
    assert lines[2]["response"] is None and lines[2]["error"]["code"] == "connection_error"
    doc = summary(results, ServingCarbon(energy_joules=5.0), 1.23456, "meter")
    assert doc["requests"] == 3 and doc["succeeded"] == 1 and doc["failed"] == 2
    assert (doc["promptTokens"], doc["completionTokens"]) == (3, 2)
    assert doc["carbon"]["energyJoules"] == 5.0 and doc["durationSeconds"] == 1.235


def test_carbon_delta_over_a_batch() -> None:
    before = ServingCarbon(
        energy_joules=100, active_energy_joules=40, emissions_grams=1.0, prompt_tokens=10
    )
    after = ServingCarbon(
        energy_joules=160,
        active_energy_joules=90,
        emissions_grams=1.5,
        prompt_tokens=30,
        generation_tokens=10,
        requests=4,
        method="estimated",
    )
    delta = carbon_delta(before, after)
    assert delta.energy_joules == 60 and delta.active_energy_joules == 50
    assert delta.idle_energy_joules == 10
    assert delta.tokens == 30
    assert delta.joules_per_token == pytest.approx(2.0)
    assert delta.grams_per_1k_tokens == pytest.approx(0.5 * 1000 / 30)


def test_sampling_kwargs_map_openai_fields() -> None:
    assert sampling_kwargs({"max_tokens": 5, "temperature": 0, "stop": ["\n"], "model": "m"}) == {
        "max_tokens": 5,
        "temperature": 0,
        "stop": ["\n"],
    }
    assert sampling_kwargs({"max_completion_tokens": 7, "logprobs": True, "top_logprobs": 3}) == {
        "max_tokens": 7,
        "logprobs": 3,
    }
