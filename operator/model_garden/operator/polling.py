"""HTTP polls of running pods: the trainer's /progress and the serving meter's carbon report.

Every poll is bounded in total time and size. httpx's own timeout applies to each read, so a pod
that trickles a byte at a time (or streams a huge body) would hold one of the operator's workers
for as long as it likes; with a handful of such pods every tenant's reconciliation stops. Here
the whole exchange (connect, headers, body) runs under one deadline, and the body is read only
up to ``MAX_BODY_BYTES``: past either bound the poll gives up and returns None, as for a pod that
does not answer.

The accumulation of meter readings into ``status.carbon`` lives in :mod:`.servingcarbon`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from model_garden.api.contracts import ServingCarbon, TrainingProgress

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""Progress and carbon documents are well under 2 KiB; anything near this is not ours."""

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class PollRefused(Exception):
    """The pod answered, but past a bound (size); the message says which."""


def fetch_progress(
    ip: str, port: int, timeout: float, max_bytes: int = MAX_BODY_BYTES
) -> TrainingProgress | None:
    """The trainer's /progress, or None when it does not answer (yet) within the bounds."""
    return fetch_document(TrainingProgress, f"http://{ip}:{port}/progress", timeout, max_bytes)


def fetch_meter(
    ip: str, port: int, path: str, timeout: float, max_bytes: int = MAX_BODY_BYTES
) -> ServingCarbon | None:
    """The serving meter's cumulative ServingCarbon, or None when it does not answer in bounds."""
    return fetch_document(ServingCarbon, f"http://{ip}:{port}{path}", timeout, max_bytes)


def _on_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, or, when this thread already runs an event loop (a caller inside one),
    the same on a worker thread: a poll never fails for where it was called from."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def fetch_document(model: type[M], url: str, timeout: float, max_bytes: int) -> M | None:
    """GET ``url`` and parse it as ``model``: at most ``timeout`` seconds in all and ``max_bytes``.

    Runs on its own event loop (the handlers are synchronous, in kopf's worker threads), where a
    cancelled read stops at once: the deadline holds however slowly the pod sends.
    """
    try:
        body = _on_own_loop(_bounded_get(url, timeout, max_bytes))
        return model.model_validate_json(body)
    except TimeoutError:
        log.warning("%s: no complete answer within %ss; skipped this poll", url, timeout)
    except PollRefused as exc:
        log.warning("%s: %s; skipped this poll", url, exc)
    except (httpx.HTTPError, ValueError, ValidationError) as exc:
        log.debug("no answer from %s: %s", url, exc)
    return None


async def _bounded_get(url: str, timeout: float, max_bytes: int) -> bytes:
    async with asyncio.timeout(timeout):
        async with httpx.AsyncClient(timeout=timeout) as client:
            # Raw bytes, uncompressed on the wire: the cap is on what we would parse.
            headers = {"Accept-Encoding": "identity"}
            async with client.stream("GET", url, headers=headers) as response:
                response.raise_for_status()
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise PollRefused(f"body of {declared} bytes is over the {max_bytes}-byte cap")
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > max_bytes:
                        raise PollRefused(f"body is over the {max_bytes}-byte cap")
                return bytes(body)
