"""``model-garden complete``: one text completion (``/v1/completions``) from a deployment or a URL.

The target is resolved as ``chat`` resolves it: a deployment's ``status.endpoint`` and served
model, or any OpenAI-compatible base URL with ``--model``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .chat import resolve
from .errors import InvalidInput
from .openai_http import api_key, completion_text, post_and_print
from .target import Target, target_options


def complete_text(
    base: str,
    model: str,
    prompt: str,
    stream: bool,
    max_tokens: int,
    temperature: float,
    stop: list[str],
    key: str | None,
) -> str:
    """One completion; prints it (piece by piece when streaming) and returns the text."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }
    if stop:
        body["stop"] = stop
    return post_and_print(f"{base}/completions", body, key, completion_text, completion_text)


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
    key = api_key()
    complete_text(base, name, prompt, stream, max_tokens, temperature, list(stop), key)
