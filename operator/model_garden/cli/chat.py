"""``model-garden chat``: talk to a deployment (by name) or to any OpenAI-compatible URL.

One-shot with a prompt (``--stream`` prints the tokens as they come), an interactive session
without one (a terminal; each turn is added to the conversation), or the prompt on stdin.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from .errors import CliError, InvalidInput, Unreachable
from .target import Target, must_get, target_options

KEY_ENVS = ("MODEL_GARDEN_API_KEY", "OPENAI_API_KEY")


def resolve(target: Target, where: str, model: str | None) -> tuple[str, str]:
    """(base URL, model name) of a deployment name or a URL."""
    if where.startswith(("http://", "https://")):
        if not model:
            raise InvalidInput("--model is needed with a URL (the name the server serves)")
        return where.rstrip("/"), model
    backend = target.backend()
    backend.refresh()
    idep = must_get(backend, "InferenceDeployment", where)
    status = idep.get("status") or {}
    if not status.get("endpoint"):
        raise CliError(
            f"InferenceDeployment {where} has no endpoint yet (mg deployments get {where})"
        )
    served = status.get("servedModels") or []
    return str(status["endpoint"]).rstrip("/"), model or (served[0] if served else where)


def _stream(response: Any) -> Iterator[str]:
    """The text pieces of a server-sent-events chat completion."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        chunk = json.loads(data)
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece


def complete(
    base: str,
    model: str,
    messages: list[dict[str, str]],
    stream: bool,
    max_tokens: int,
    temperature: float,
    api_key: str | None,
) -> str:
    """One chat completion; prints it (piece by piece when streaming) and returns the text."""
    import httpx

    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = f"{base}/chat/completions"
    try:
        if stream:
            pieces = []
            with httpx.stream("POST", url, json=body, headers=headers, timeout=300) as response:
                if response.status_code != 200:
                    response.read()
                    raise CliError(f"{url}: {response.status_code} {response.text[:300]}")
                for piece in _stream(response):
                    click.echo(piece, nl=False)
                    pieces.append(piece)
            click.echo()
            return "".join(pieces)
        response = httpx.post(url, json=body, headers=headers, timeout=300)
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach {base}: {exc}") from exc
    if response.status_code != 200:
        raise CliError(f"{url}: {response.status_code} {response.text[:300]}")
    text = str(response.json()["choices"][0]["message"]["content"])
    click.echo(text)
    return text


@click.command()
@click.argument("where")
@click.argument("prompt", required=False)
@click.option("--model", help="Model name to ask for [default: the deployment's served model].")
@click.option("--stream", is_flag=True, help="Print the answer as it is generated.")
@click.option("--system", help="A system message first.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0), default=0.7, show_default=True)
@target_options
def chat(
    target: Target,
    where: str,
    prompt: str | None,
    model: str | None,
    stream: bool,
    system: str | None,
    max_tokens: int,
    temperature: float,
) -> None:
    """Chat with a deployment (WHERE is its name) or any OpenAI-compatible URL.

    With PROMPT: one answer. Without, on a terminal: a conversation (Ctrl-D ends it); else the
    prompt is read from stdin. The API key comes from $MODEL_GARDEN_API_KEY or $OPENAI_API_KEY.

    \b
    Example:
      mg chat pets "Describe the pets." --stream
      mg chat http://127.0.0.1:8000/v1 --model pets "Hello"
    """
    base, name = resolve(target, where, model)
    key = next((os.environ[k] for k in KEY_ENVS if os.environ.get(k)), None)
    messages = [{"role": "system", "content": system}] if system else []
    if prompt is None and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
    if prompt is not None:
        messages.append({"role": "user", "content": prompt})
        complete(base, name, messages, stream, max_tokens, temperature, key)
        return
    click.echo(f"chatting with {name} at {base} (Ctrl-D ends)", err=True)
    while True:
        try:
            said = click.prompt("you", prompt_suffix="> ", err=True)
        except (EOFError, click.Abort):
            click.echo(err=True)
            return
        messages.append({"role": "user", "content": said})
        answer = complete(base, name, messages, True, max_tokens, temperature, key)
        messages.append({"role": "assistant", "content": answer})
