"""One OpenAI-compatible request, streamed or not, printed as it comes: ``chat`` and ``complete``.

Both endpoints answer the same way (JSON, or server-sent events ending with ``[DONE]``); only
where the text sits in a choice differs (``message``/``delta`` content for chat, ``text`` for
completions), so the caller passes those two readers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import click

from .errors import CliError, Unreachable

KEY_ENVS = ("MODEL_GARDEN_API_KEY", "OPENAI_API_KEY")
Choice = dict[str, Any]


def api_key() -> str | None:
    """The endpoint's API key from the environment (never a flag: it would show in ``ps``)."""
    return next((os.environ[k] for k in KEY_ENVS if os.environ.get(k)), None)


def chat_text(choice: Choice) -> str | None:
    return (choice.get("message") or {}).get("content")


def chat_piece(choice: Choice) -> str | None:
    return (choice.get("delta") or {}).get("content")


def completion_text(choice: Choice) -> str | None:
    text = choice.get("text")
    return None if text is None else str(text)


def stream_pieces(lines: Iterator[str], piece_of: Callable[[Choice], str | None]) -> Iterator[str]:
    """The text pieces of a server-sent-events answer, up to ``data: [DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        for choice in json.loads(data).get("choices") or []:
            piece = piece_of(choice)
            if piece:
                yield piece


def post_and_print(
    url: str,
    body: dict[str, Any],
    key: str | None,
    text_of: Callable[[Choice], str | None],
    piece_of: Callable[[Choice], str | None],
) -> str:
    """POST ``body`` to ``url``; print the answer (piece by piece when ``body["stream"]``) and
    return its text. A refused request or an unreadable answer is a one-line error."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        if body.get("stream"):
            pieces = []
            with httpx.stream("POST", url, json=body, headers=headers, timeout=300) as response:
                if response.status_code != 200:
                    response.read()
                    raise CliError(f"{url}: {response.status_code} {response.text[:300]}")
                for piece in stream_pieces(response.iter_lines(), piece_of):
                    click.echo(piece, nl=False)
                    pieces.append(piece)
            click.echo()
            return "".join(pieces)
        response = httpx.post(url, json=body, headers=headers, timeout=300)
    except httpx.TransportError as exc:
        raise Unreachable(f"cannot reach {url.rsplit('/', 1)[0]}: {exc}") from exc
    if response.status_code != 200:
        raise CliError(f"{url}: {response.status_code} {response.text[:300]}")
    try:
        text = text_of(response.json()["choices"][0])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise CliError(f"{url}: not an OpenAI answer: {response.text[:300]}") from exc
    if text is None:
        raise CliError(f"{url}: not an OpenAI answer: {response.text[:300]}")
    click.echo(text)
    return text
