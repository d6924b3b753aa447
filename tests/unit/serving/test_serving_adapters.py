"""Adapter diffing, and applying a plan against an HTTP stand-in for vLLM's adapter endpoints."""

from __future__ import annotations

import json

import httpx

from model_garden.api.contracts import ServedArtifact
from model_garden.serving.adapters import apply_plan, plan_adapters


def a(name: str, path: str | None = None) -> ServedArtifact:
    return ServedArtifact(name=name, path=path or f"/adapters/{name}")


def test_plan_table() -> None:
    cases = {
        "nothing changes": ([a("x")], [a("x")], [], []),
        "add one": ([a("x")], [a("x"), a("y")], [], ["y"]),
        "remove one": ([a("x"), a("y")], [a("x")], ["y"], []),
        "path change reloads": ([a("x")], [a("x", "/new")], ["x"], ["x"]),
        "swap": ([a("x")], [a("y")], ["x"], ["y"]),
        "from none": ([], [a("x"), a("y")], [], ["x", "y"]),
    }
    for name, (current, desired, unload, load) in cases.items():
        plan = plan_adapters(current, desired)
        assert plan.unload == unload, name
        assert [x.name for x in plan.load] == load, name
        assert plan.empty == (not unload and not load), name


def test_describe_says_what_happens() -> None:
    plan = plan_adapters([a("x")], [a("y")])
    assert plan.describe() == ["Unloading adapter x", "Loading adapter y from /adapters/y"]


def test_apply_plan_reports_what_vllm_really_serves() -> None:
    calls: list[tuple[str, dict[str, str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append((request.url.path, body))
        if body.get("lora_name") == "broken":
            return httpx.Response(400, json={"error": {"message": "bad adapter"}})
        if request.url.path.endswith("unload_lora_adapter") and body["lora_name"] == "ghost":
            return httpx.Response(404, json={"error": {"message": "not found"}})
        return httpx.Response(200, text="ok")

    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://vllm")
    current = [a("x"), a("ghost")]
    plan = plan_adapters(current, [a("y"), a("broken")])
    loaded, errors = apply_plan(client, plan, current)
    assert [x.name for x in loaded] == ["y"]
    assert len(errors) == 1 and "broken" in errors[0]
    assert calls[0] == ("/v1/unload_lora_adapter", {"lora_name": "x"})
    assert ("/v1/load_lora_adapter", {"lora_name": "y", "lora_path": "/adapters/y"}) in calls
