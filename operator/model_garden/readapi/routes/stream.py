"""Server-Sent Events: ``change`` for every object added, modified or deleted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette.sse import EventSourceResponse

from ..deps import CallerDep, SettingsDep, SourceDep
from ..source import ApiError

router = APIRouter(tags=["stream"])


@router.get("/stream", response_class=EventSourceResponse, response_model=None)
async def stream(
    request: Request, source: SourceDep, settings: SettingsDep, caller: CallerDep
) -> EventSourceResponse:
    """Events the caller may see (namespaces they may list), a ``ping`` comment every 15 s."""
    if source.mode == "cluster" and not caller.token:
        raise ApiError(401, "send your Kubernetes bearer token (Authorization: Bearer)")
    visible = await asyncio.to_thread(source.namespaces, caller)
    queue = source.changes.subscribe()

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                change = await queue.get()
                if change.namespace in visible:
                    yield {"event": "change", "data": json.dumps(change.wire())}
        finally:
            source.changes.unsubscribe(queue)

    return EventSourceResponse(events(), ping=int(max(1, settings.ping_seconds)))
