"""The chat proxy: the request goes to the deployment's endpoint, the answer (a stream too)
comes back unchanged. The upstream here is a small OpenAI-shaped server (tests/ml runs the real
vLLM; it takes a minute to start, too slow for this folder)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from model_garden.local.store import LocalStore
from model_garden.readapi import ReadApiSettings, create_app
from model_garden.readapi.local import LocalSource

from .live import serve

CHUNKS = [
    'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n',
    'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n',
    "data: [DONE]\n\n",
]


def upstream() -> tuple[FastAPI, list[dict]]:
    app, seen = FastAPI(), []

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> StreamingResponse | JSONResponse:
        body = await request.json()
        seen.append(body)
        if body.get("model") != "pets":
            return JSONResponse({"error": {"message": "no such model"}}, status_code=404)
        if not body.get("stream"):
            return JSONResponse(
                {"choices": [{"message": {"role": "assistant", "content": "Hello"}}]}
            )

        async def events() -> AsyncIterator[str]:
            for chunk in CHUNKS:
                yield chunk

        return StreamingResponse(events(), media_type="text/event-stream")

    return app, seen


def test_chat_is_forwarded_and_a_stream_passes_through_unchanged(
    store: LocalStore, tmp_path: Path
) -> None:
    app, seen = upstream()
    with serve(app) as endpoint:
        store.patch("InferenceDeployment", "pets", {"status": {"endpoint": f"{endpoint}/v1"}})
        api = create_app(LocalSource(store.home), ReadApiSettings(static_dir=tmp_path))
        with serve(api) as base, httpx.Client(base_url=base, timeout=20) as http:
            url = "/api/v1/inferencedeployments/default/pets/chat/completions"
            messages = [{"role": "user", "content": "hi"}]
            plain = http.post(url, json={"model": "pets", "messages": messages})
            assert plain.status_code == 200
            assert plain.json()["choices"][0]["message"]["content"] == "Hello"
            with http.stream(
                "POST", url, json={"model": "pets", "messages": messages, "stream": True}
            ) as reply:
                assert reply.headers["content-type"].startswith("text/event-stream")
                text = "".join(reply.iter_text())
            assert text == "".join(CHUNKS)
            wrong = http.post(url, json={"model": "other", "messages": messages})
            assert wrong.status_code == 404 and "no such model" in wrong.text
    assert [b["model"] for b in seen] == ["pets", "pets", "other"]
    assert seen[1]["stream"] is True and seen[0]["messages"] == messages
    # the upstream is gone now: a clear 502
    with serve(create_app(LocalSource(store.home), ReadApiSettings(static_dir=tmp_path))) as base:
        down = httpx.post(
            f"{base}/api/v1/inferencedeployments/default/pets/chat/completions",
            content=json.dumps({"model": "pets", "messages": []}),
            headers={"content-type": "application/json"},
        )
    assert down.status_code == 502 and "did not answer" in down.json()["detail"]
