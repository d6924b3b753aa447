"""``model-garden chat``: talk to a deployment (by name) or to any OpenAI-compatible URL.

One-shot with a prompt (``--stream`` prints the tokens as they come), an interactive session
without one (a terminal; each turn is added to the conversation), or the prompt on stdin.
"""

from __future__ import annotations

import sys

import click

from .errors import CliError, InvalidInput
from .openai_http import api_key, chat_piece, chat_text, post_and_print
from .target import Target, must_get, target_options


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


def complete(
    base: str,
    model: str,
    messages: list[dict[str, str]],
    stream: bool,
    max_tokens: int,
    temperature: float,
    key: str | None,
) -> str:
    """One chat completion; prints it (piece by piece when streaming) and returns the text."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": stream,
    }
    return post_and_print(f"{base}/chat/completions", body, key, chat_text, chat_piece)


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
    key = api_key()
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
