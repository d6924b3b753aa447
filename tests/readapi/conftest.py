"""A read API over a filled local store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from model_garden.local.store import LocalStore
from model_garden.readapi import ReadApiSettings, create_app
from model_garden.readapi.local import LocalSource

from .fill import fill

TOKEN = "test-token-123"
WRITE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "home")
    fill(store)
    return store


@pytest.fixture
def source(store: LocalStore) -> LocalSource:
    return LocalSource(store.home, token=TOKEN, poll_seconds=0.1, max_staleness=0.0)


@pytest.fixture
def client(source: LocalSource, tmp_path: Path) -> Iterator[TestClient]:
    settings = ReadApiSettings(static_dir=tmp_path / "no-static", ping_seconds=1)
    with TestClient(create_app(source, settings)) as client:
        yield client
