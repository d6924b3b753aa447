"""Every executor call is bounded: an API server that accepts and never answers cannot pin a worker."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from model_garden.operator.executor import ApiTimeout, Executor
from model_garden.operator.plan import ObjectRef
from model_garden.operator.settings import OperatorSettings


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A local socket that accepts connections, reads nothing back, and stays silent."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            accepted.append(conn)  # held open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        sock.close()


def test_a_silent_api_server_fails_the_call_within_the_bound(silent_server: str) -> None:
    settings = OperatorSettings(api_connect_timeout_seconds=1, api_read_timeout_seconds=1)
    configuration = client.Configuration()
    configuration.host = silent_server
    executor = Executor(
        client.ApiClient(configuration),
        timeout=(settings.api_connect_timeout_seconds, settings.api_read_timeout_seconds),
    )
    calls = [
        lambda: executor.get(ObjectRef("v1", "ConfigMap", "team", "x")),  # a GET is never retried
        lambda: executor.list_objects("batch/v1", "Job", "team"),
        lambda: executor.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "t"}}
        ),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(ApiTimeout, match="did not answer within 1 s"):
            call()
        assert time.monotonic() - started < 2.5


def test_a_status_patch_repeated_from_the_same_body_is_not_sent_again() -> None:
    """The operator's view lags its own writes: a plan made again from the same resourceVersion
    repeats the patch just sent, which would store a new version that changes nothing."""
    from model_garden.operator.executor import SentStatus
    from model_garden.operator.plan import ObjectRef

    sent = SentStatus()
    ref = ObjectRef("modelgarden.dev/v1alpha1", "FineTuneJob", "team", "tune")
    patch = {"conditions": [{"type": "Running", "status": "True"}], "progress": {"step": 3}}
    assert not sent.repeats(ref, "41", patch)
    sent.record(ref, "41", patch)
    assert sent.repeats(ref, "41", {"progress": {"step": 3}, "conditions": patch["conditions"]})
    assert not sent.repeats(ref, "42", patch), "a newer body (someone else's write) is answered"
    assert not sent.repeats(ref, "41", {"progress": {"step": 4}})
    assert not sent.repeats(ref, None, patch)
    sent.forget(ref)
    assert not sent.repeats(ref, "41", patch) and sent.skipped == 1
