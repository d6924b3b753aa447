"""The one interface both sources implement (local store, cluster watch cache), and what they share:
errors, callers, change events and their fan-out to SSE subscribers."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

KINDS = ("FineTuneJob", "ModelVersion", "InferenceDeployment")


class ApiError(Exception):
    """An error the app turns into ``{"detail": ...}`` with ``status``."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else str(detail))
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Caller:
    """Who asks: the bearer token of the request (None: none sent)."""

    token: str | None


@dataclass(frozen=True)
class Change:
    kind: str
    namespace: str
    name: str
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    resource_version: str

    def wire(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "type": self.type,
            "resourceVersion": self.resource_version,
        }


class Broadcaster:
    """Fans change events out from a source's thread to every SSE client's asyncio queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Change]]] = []

    def subscribe(self) -> asyncio.Queue[Change]:
        queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=10_000)
        with self._lock:
            self._queues.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        with self._lock:
            self._queues = [(lp, q) for lp, q in self._queues if q is not queue]

    def publish(self, change: Change) -> None:
        with self._lock:
            targets = list(self._queues)
        for loop, queue in targets:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_put, queue, change)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._queues)


def _put(queue: asyncio.Queue[Change], change: Change) -> None:
    if not queue.full():  # a client too slow to read 10k events misses some, never blocks us
        queue.put_nowait(change)


class Source(Protocol):
    """Where the resources come from, and where writes go."""

    mode: Literal["local", "cluster"]
    changes: Broadcaster
    generation: int
    """Grows with every change seen: what cached summaries are keyed by."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def namespaces(self, caller: Caller) -> list[str]: ...
    def items(
        self, kind: str, caller: Caller, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """The objects of ``kind`` the caller may list (in ``namespace``, or every namespace)."""
        ...

    def get(
        self, kind: str, namespace: str, name: str, caller: Caller
    ) -> dict[str, Any] | None: ...
    def events(
        self, kind: str, namespace: str, name: str, caller: Caller
    ) -> list[dict[str, Any]]: ...
    def create(self, body: dict[str, Any], caller: Caller) -> dict[str, Any]: ...
    def patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], caller: Caller
    ) -> dict[str, Any]: ...
    def scale(self, namespace: str, name: str, replicas: int, caller: Caller) -> dict[str, Any]: ...
    def delete(self, kind: str, namespace: str, name: str, caller: Caller) -> None: ...
    def job_history_file(self, ftj: dict[str, Any], caller: Caller) -> Path | None:
        """The trainer's history.jsonl of this job (None when there is none to read)."""
        ...

    def meter_history_files(self, idep: dict[str, Any], caller: Caller) -> list[Path]:
        """The meters' history files of this deployment's pods, oldest first."""
        ...

    def authorize_write(self, caller: Caller) -> None:
        """Raise 401/403 when this caller may not write at all (local mode: the token)."""
        ...

    def authorize_upload(self, namespace: str, caller: Caller) -> None:
        """Raise 403 when this caller may not store datasets in ``namespace``."""
        ...

    def datasets_dir(self, namespace: str) -> Path | None:
        """``<claim>/<namespace>/datasets`` (None: this source stores no datasets)."""
        ...
