"""A real S3-compatible server for the storage tests: moto's server mode (``moto[server]``),
started once per session on a free loopback port; each test gets its own bucket."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

_buckets = itertools.count()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The AWS variables a pod gets from its storage Secret, pointed at the moto server."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    return s3_endpoint


@pytest.fixture
def bucket(s3_env: str) -> str:
    from model_garden.storage import s3

    name = f"bucket-{next(_buckets)}"
    s3.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3c(s3_env: str) -> Any:
    from model_garden.storage import s3

    return s3.client()
