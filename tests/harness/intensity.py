"""A local grid-intensity provider speaking Electricity Maps' documented v3 response, whose
value a test sets: carbon-aware scheduling is tested against it, never the internet.

``GET /v3/carbon-intensity/latest?zone=FR`` with header ``auth-token`` answers
``{"zone", "carbonIntensity", "datetime", "updatedAt", ...}`` (the fields the client reads, as
https://docs.electricitymaps.com documents them); a wrong token gets 401.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

TOKEN = "test-token-not-a-secret"


class IntensityServer:
    """Serves ``g_per_kwh`` (change it at any time) for every zone; counts the requests."""

    def __init__(self, g_per_kwh: float, host: str = "127.0.0.1", port: int = 0) -> None:
        self.g_per_kwh = g_per_kwh
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlparse(self.path)
                outer.requests += 1
                if self.headers.get("auth-token") != TOKEN:
                    self._send(401, {"message": "invalid auth-token"})
                elif url.path != "/v3/carbon-intensity/latest":
                    self._send(404, {"message": f"no route {url.path}"})
                else:
                    zone = (parse_qs(url.query).get("zone") or [""])[0]
                    now = datetime.now(UTC).replace(microsecond=0).isoformat()
                    self._send(
                        200,
                        {
                            "zone": zone,
                            "carbonIntensity": outer.g_per_kwh,
                            "datetime": now.replace("+00:00", ".000Z"),
                            "updatedAt": now.replace("+00:00", ".000Z"),
                            "emissionFactorType": "lifecycle",
                            "isEstimated": False,
                        },
                    )

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def token_file(self, folder: Path) -> Path:
        """The API key as a file, the way the chart mounts the provider's Secret."""
        path = folder / "apiKey"
        path.write_text(TOKEN + "\n", encoding="utf-8")
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
