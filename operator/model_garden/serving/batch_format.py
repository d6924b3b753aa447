"""OpenAI Batch file formats: parse the input JSONL, write the output JSONL, build the summary.

Input lines: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions" | "/v1/completions",
"body": {...}}``. Output lines: ``{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error"}`` in the order of the input. Pure: no vLLM, no HTTP.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_garden.api.contracts import ServingCarbon

ENDPOINTS = ("/v1/chat/completions", "/v1/completions")


@dataclass(frozen=True)
class BatchRequest:
    line: int
    custom_id: str
    url: str
    body: dict[str, Any]


@dataclass
class BatchResult:
    custom_id: str
    status_code: int | None = None
    body: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def to_line(self) -> dict[str, Any]:
        response = None
        if self.status_code is not None:
            response = {
                "status_code": self.status_code,
                "request_id": (self.body or {}).get("id") or f"req_{uuid.uuid4().hex[:24]}",
                "body": self.body,
            }
        return {
            "id": f"batch_req_{uuid.uuid4().hex[:24]}",
            "custom_id": self.custom_id,
            "response": response,
            "error": self.error,
        }


class BatchInputError(ValueError):
    """The input file has bad lines; every problem is listed with its line number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_requests(text: str) -> list[BatchRequest]:
    """All requests of a batch input file, or a BatchInputError naming each bad line."""
    requests: list[BatchRequest] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(item, dict):
            problems.append(f"line {number}: expected an object")
            continue
        custom_id = item.get("custom_id")
        url = item.get("url")
        body = item.get("body")
        if not isinstance(custom_id, str) or not custom_id:
            problems.append(f"line {number}: custom_id must be a non-empty string")
            continue
        if custom_id in seen:
            problems.append(f"line {number}: custom_id {custom_id!r} is used twice")
            continue
        seen.add(custom_id)
        if item.get("method", "POST") != "POST":
            problems.append(f"line {number}: method must be POST")
        elif url not in ENDPOINTS:
            problems.append(f"line {number}: url {url!r} is not one of {', '.join(ENDPOINTS)}")
        elif not isinstance(body, dict) or "model" not in body:
            problems.append(f"line {number}: body must be an object with a model")
        elif url == ENDPOINTS[0] and not isinstance(body.get("messages"), list):
            problems.append(f"line {number}: body.messages must be a list for {url}")
        elif url == ENDPOINTS[1] and "prompt" not in body:
            problems.append(f"line {number}: body.prompt is required for {url}")
        elif body.get("stream"):
            problems.append(f"line {number}: body.stream is not supported in a batch")
        else:
            requests.append(BatchRequest(number, custom_id, url, body))
    if problems:
        raise BatchInputError(problems)
    if not requests:
        raise BatchInputError(["the input holds no request"])
    return requests


def read_requests(path: Path) -> list[BatchRequest]:
    return parse_requests(path.read_text(encoding="utf-8"))


def write_results(path: Path, results: list[BatchResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for result in results:
            out.write(json.dumps(result.to_line(), separators=(",", ":")) + "\n")
    tmp.replace(path)


def usage_totals(results: list[BatchResult]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) summed over the successful responses."""
    prompt = completion = 0
    for result in results:
        usage = (result.body or {}).get("usage") or {}
        prompt += int(usage.get("prompt_tokens") or 0)
        completion += int(usage.get("completion_tokens") or 0)
    return prompt, completion


def summary(
    results: list[BatchResult], carbon: ServingCarbon, duration_s: float, source: str
) -> dict[str, Any]:
    """The batch's figures: counts, tokens, duration, and the energy and emissions it caused."""
    prompt, completion = usage_totals(results)
    ok = sum(1 for r in results if r.status_code is not None and r.status_code < 400)
    return {
        "requests": len(results),
        "succeeded": ok,
        "failed": len(results) - ok,
        "promptTokens": prompt,
        "completionTokens": completion,
        "durationSeconds": round(duration_s, 3),
        "carbonSource": source,
        "carbon": carbon.to_wire(),
    }
