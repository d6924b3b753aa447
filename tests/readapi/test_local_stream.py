"""Server-Sent Events from the local store: a status change becomes a ``change`` event."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from model_garden.local.store import LocalStore
from model_garden.readapi import ReadApiSettings, create_app
from model_garden.readapi.local import LocalSource

from .conftest import TOKEN
from .live import serve


def test_a_status_change_is_streamed(store: LocalStore, tmp_path: Path) -> None:
    source = LocalSource(store.home, token=TOKEN, poll_seconds=0.2)
    app = create_app(source, ReadApiSettings(static_dir=tmp_path, ping_seconds=1))
    events: list[dict] = []
    with serve(app) as base, httpx.Client(base_url=base, timeout=10) as http:

        def change_later() -> None:
            deadline = time.monotonic() + 5
            while source.changes.subscribers == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            store.patch("FineTuneJob", "chat-run", {"status": {"progress": {"step": 11}}})

        threading.Thread(target=change_later, daemon=True).start()
        with http.stream("GET", "/api/v1/stream") as reply:
            assert reply.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in reply.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind == "change":
                    events.append(json.loads(line.split(":", 1)[1]))
                    break
    expected_rv = store.get("FineTuneJob", "chat-run")["metadata"]["resourceVersion"]  # type: ignore[index]
    assert events == [
        {
            "kind": "FineTuneJob",
            "namespace": "default",
            "name": "chat-run",
            "type": "MODIFIED",
            "resourceVersion": expected_rv,
        }
    ]


def test_refresh_reports_added_modified_deleted(store: LocalStore) -> None:
    source = LocalSource(store.home)
    seen = []
    source.changes.publish = seen.append  # type: ignore[method-assign]
    store.create(
        {**store.get("ModelVersion", "pets-v2"), "metadata": {"name": "pets-v3"}}
        | {
            "spec": {**store.get("ModelVersion", "pets-v2")["spec"], "version": 3}  # type: ignore[index]
        }
    )
    store.patch("ModelVersion", "pets-v1", {"spec": {"stage": "staging"}})
    store.delete("InferenceDeployment", "pets")
    source.refresh()
    assert sorted((c.kind, c.name, c.type) for c in seen) == [
        ("InferenceDeployment", "pets", "DELETED"),
        ("ModelVersion", "pets-v1", "MODIFIED"),
        ("ModelVersion", "pets-v3", "ADDED"),
    ]
    seen.clear()
    source.refresh()
    assert seen == []
