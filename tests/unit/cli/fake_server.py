"""A stand-in for ``python -m model_garden.serving`` in CLI unit tests (no vLLM needed).

It reads the ServingConfig as the launcher does and serves, on its ports: ``/health`` and an
OpenAI-style ``/v1/chat/completions`` and ``/v1/completions`` (one-shot and server-sent events)
that answer ``ANSWER`` to the served model's name, and the meter's ``/carbon`` counting the tokens it served.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from model_garden.api.contracts import ServingCarbon, ServingConfig, read_document

ANSWER = "The cat is red."


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    config = read_document(ServingConfig, parser.parse_args().config)
    counted = {"tokens": 0, "requests": 0}

    class Api(BaseHTTPRequestHandler):
        def _json(self, doc: Any, code: int = 200) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            self._json(
                {"ok": True} if self.path == "/health" else {"error": "no"},
                200 if self.path == "/health" else 404,
            )

        def do_POST(self) -> None:  # noqa: N802
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if request.get("model") != config.model.name:
                self._json({"error": {"message": f"model {request.get('model')} not served"}}, 404)
                return
            counted["tokens"] += 10
            counted["requests"] += 1
            usage = {"prompt_tokens": 6, "completion_tokens": 4, "total_tokens": 10}
            chat = self.path.endswith("/chat/completions")
            if not request.get("stream"):
                message = {"role": "assistant", "content": ANSWER}
                choice = {"index": 0, "message": message} if chat else {"index": 0, "text": ANSWER}
                self._json({"choices": [choice], "usage": usage})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for word in ANSWER.split(" "):
                piece = word if word == ANSWER.split(" ")[0] else " " + word
                delta = {"delta": {"content": piece}} if chat else {"text": piece}
                chunk = {"choices": [{"index": 0, **delta}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, *args: object) -> None:
            pass

    class Meter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            tokens = counted["tokens"]
            reading = ServingCarbon(
                energy_joules=5.0 + tokens,
                active_energy_joules=float(tokens),
                idle_energy_joules=5.0,
                emissions_grams=0.001 * (5 + tokens),
                active_emissions_grams=0.001 * tokens,
                idle_emissions_grams=0.005,
                prompt_tokens=tokens * 6 // 10,
                generation_tokens=tokens * 4 // 10,
                requests=counted["requests"],
                window_active_energy_joules=float(tokens),
                window_active_emissions_grams=0.001 * tokens,
                window_tokens=tokens,
                grams_per_1k_tokens=1.0 if tokens else None,
                country=config.country,
            )
            body = reading.model_dump_json(by_alias=True, exclude_none=True).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    servers = [
        ThreadingHTTPServer((config.host, config.ports.api), Api),
        ThreadingHTTPServer((config.host, config.ports.meter), Meter),
    ]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"serving {config.model.name} from {config.model.path}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
