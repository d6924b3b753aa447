"""``model-garden complete``: one text completion (``/v1/completions``) from a deployment or a URL.

The target is resolved as ``chat`` resolves it: a deployment's ``status.endpoint`` and served
model, or any OpenAI-compatible base URL with ``--model``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from .chat import KEY_ENVS, resolve
from .errors import CliError, InvalidInput, Unreachable
from .target import Target, target_options


def _pieces(response: Any) -> Iterator[str]:
    """The text pieces of a server-sent-events completion."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        for choice in json.loads(data).get("choices") or []:
            if choice.get("text"):
                yield str(choice["text"])


def complete_text(
    base: str,
    model: str,
    prompt: str,
    stream: bool,
    max_tokens: int,
    temperature: float,
    stop: list[str],
    api_key: str | None,
) -> str:
    """One completion; prints it (piece by piece when streaming) and returns the text."""
    import httpx

    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }
    if stop:
        body["stop"] = stop
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = f"{base}/completions"
    try:
        if stream:
            pieces = []
            with httpx.stream("POST", url, json=body, headers=headers, timeout=300) as response:
                if response.status_code != 200:
                    response.read()
                    raise CliError(f"{url}: {response.status_code} {response.text[:300]}")
                for piece in _pieces(response):
                    click.echo(piece, nl=False)
                    pieces.append(piece)
            click.echo()
            return "".join(pieces)
        response = httpx.post(url, json=body, headers=headers, timeout=300)
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach {base}: {exc}") from exc
    if response.status_code != 200:
        raise CliError(f"{url}: {response.status_code} {response.text[:300]}")
    try:
        text = str(response.json()["choices"][0]["text"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise CliError(f"{url}: not an OpenAI completion: {response.text[:300]}") from exc
    click.echo(text)
    return text


@click.command()
@click.argument("where")
@click.argument("prompt", required=False)
@click.option("--model", help="Model name to ask for [default: the deployment's served model].")
@click.option("--stream", is_flag=True, help="Print the text as it is generated.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--temperature", type=click.FloatRange(min=0), default=0.7, show_default=True)
@click.option("--stop", multiple=True, help="Stop sequence (repeatable).")
@target_options
def complete(
    target: Target,
    where: str,
    prompt: str | None,
    model: str | None,
    stream: bool,
    max_tokens: int,
    temperature: float,
    stop: tuple[str, ...],
) -> None:
    """Complete PROMPT (plain text, no chat template) with a deployment or an OpenAI-compatible URL.

    WHERE is a deployment's name or a base URL (…/v1, with --model). Without PROMPT the text is
    read from stdin. The API key comes from $MODEL_GARDEN_API_KEY or $OPENAI_API_KEY.

    \b
    Example:
      mg complete pets "Once upon a time" --max-tokens 32 --stream
      mg complete http://127.0.0.1:8000/v1 --model pets "The cat is" --stop .
    """
    base, name = resolve(target, where, model)
    if prompt is None:
        if sys.stdin.isatty():
            raise InvalidInput("a PROMPT is needed (an argument, or on stdin)")
        prompt = sys.stdin.read()
    key = next((os.environ[k] for k in KEY_ENVS if os.environ.get(k)), None)
    complete_text(base, name, prompt, stream, max_tokens, temperature, list(stop), key)
