"""Polls of pods are bounded in total time and size, against real local HTTP servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from model_garden.api.contracts import ServingCarbon
from model_garden.operator.polling import MAX_BODY_BYTES, fetch_meter, fetch_progress

GOOD = ServingCarbon(energy_joules=5.0, idle_energy_joules=5.0).model_dump_json(by_alias=True)


def serve(write: Callable[[BaseHTTPRequestHandler, threading.Event], None]) -> Iterator[int]:
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            try:
                write(self, stop)
            except OSError:
                pass  # the client gave up, as it should

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def _good(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    body = GOOD.encode()
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _trickle(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """A valid document, one byte every 0.2 s: each read is quick, the whole takes minutes."""
    body = GOOD.encode()
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    for byte in body:
        if stop.wait(0.2):
            return
        h.wfile.write(bytes([byte]))
        h.wfile.flush()


def _huge_undeclared(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    """No Content-Length: a body until the connection closes, 64 MiB of it."""
    h.send_response(200)
    h.end_headers()
    chunk = b" " * 65536
    for _ in range(1024):
        if stop.is_set():
            return
        h.wfile.write(chunk)


def _huge_declared(h: BaseHTTPRequestHandler, stop: threading.Event) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(1 << 30))
    h.end_headers()
    h.wfile.write(b"{" * 1024)
    stop.wait(30)


@pytest.fixture
def good() -> Iterator[int]:
    yield from serve(_good)


def test_a_normal_answer_is_parsed(good: int) -> None:
    reading = fetch_meter("127.0.0.1", good, "/carbon", timeout=2.0)
    assert reading is not None and reading.energy_joules == 5.0


def test_a_trickling_pod_is_cut_off_at_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    for port in serve(_trickle):
        started = time.monotonic()
        assert fetch_progress("127.0.0.1", port, timeout=1.0) is None
        elapsed = time.monotonic() - started
        # Old code: httpx's timeout is per read, each byte came in 0.2 s, so it took ~50 s.
        assert elapsed < 1.8, elapsed
    assert "within 1.0s" in caplog.text


@pytest.mark.parametrize("write", [_huge_undeclared, _huge_declared], ids=["streamed", "declared"])
def test_a_huge_body_is_refused(
    write: Callable[[BaseHTTPRequestHandler, threading.Event], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for port in serve(write):
        started = time.monotonic()
        assert fetch_meter("127.0.0.1", port, "/carbon", timeout=5.0) is None
        assert time.monotonic() - started < 2.0
    assert f"{MAX_BODY_BYTES}-byte cap" in caplog.text


def test_a_poll_from_inside_a_running_event_loop_still_answers() -> None:
    """A caller that runs an event loop in its thread (a browser driver in a test session, an
    async server) gets the answer, not "asyncio.run() cannot be called from a running loop"."""
    import asyncio

    def good(handler: BaseHTTPRequestHandler, _stop: threading.Event) -> None:
        handler.send_response(200)
        handler.end_headers()
        handler.wfile.write(GOOD.encode())

    got: list[ServingCarbon | None] = []

    async def inside(port: int) -> None:
        got.append(fetch_meter("127.0.0.1", port, "/carbon", timeout=5))

    for port in serve(good):
        # a thread of its own, so the test runs whether or not this one already has a loop
        worker = threading.Thread(target=lambda at: asyncio.run(inside(at)), args=(port,))
        worker.start()
        worker.join(30)
        assert len(got) == 1 and got[0] is not None and got[0].energy_joules == 5.0
