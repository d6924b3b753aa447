"""An imported ``hf://<org>/<name>@<revision>`` artifact: downloaded by the verify program (the
real ``huggingface_hub`` client in the CPU runtime) and hashed after download.

The Hub is unreachable here, so the test serves the tiny model through a stand-in for the Hub's
HTTP API on loopback (``HF_ENDPOINT``): the revision, tree and resolve routes
``snapshot_download`` calls. Everything past the HTTP layer is the real client.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from model_garden.api.digest import artifact_digest
from model_garden.runtime import runtime_env, runtime_python

pytestmark = pytest.mark.ml

REPO = "garden/tiny-llama"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_handler(root: Path, downloads: list[str] | None = None) -> type[BaseHTTPRequestHandler]:
    """The stand-in's routes; each file body it sends is added to ``downloads``."""
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}

    class Hub(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _json(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _file(self, rel: str, body: bool) -> None:
            path = files.get(rel)
            if path is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.end_headers()
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)
                if downloads is not None:
                    downloads.append(rel)

        def _route(self, body: bool) -> None:
            path = unquote(urlparse(self.path).path)
            if path in (
                f"/api/models/{REPO}/revision/main",
                f"/api/models/{REPO}/revision/{COMMIT}",
            ):
                self._json(
                    {"id": REPO, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
                )
            elif path == f"/api/models/{REPO}/tree/{COMMIT}":
                self._json(
                    [
                        {
                            "type": "file",
                            "path": rel,
                            "size": p.stat().st_size,
                            "oid": hashlib.sha1(p.read_bytes()).hexdigest(),
                        }
                        for rel, p in files.items()
                    ]
                )
            elif path.startswith(f"/{REPO}/resolve/"):
                self._file(path.split("/", 5)[5], body)
            else:
                self.send_response(404)
                self.send_header("X-Error-Code", "RepoNotFound")
                self.end_headers()

        def do_GET(self) -> None:
            self._route(True)

        def do_HEAD(self) -> None:
            self._route(False)

    return Hub


@pytest.fixture
def hub_downloads() -> list[str]:
    """The files the Hub stand-in sent, in order."""
    return []


@pytest.fixture
def hub(tiny_model: Path, hub_downloads: list[str]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), hub_handler(tiny_model, hub_downloads))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def verify(uri: str, hub: str, home: Path, log: Path) -> tuple[int, dict[str, object], str]:
    env = runtime_env(offline=False, extra={"HF_ENDPOINT": hub, "HF_HOME": str(home)})
    env.pop("HF_HUB_OFFLINE", None)
    proc = subprocess.run(
        [
            runtime_python(),
            "-m",
            "model_garden.operator.verify",
            "--path",
            uri,
            "--format",
            "merged",
            "--termination-log",
            str(log),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, json.loads(log.read_text()), proc.stderr


def test_hf_artifact_is_downloaded_then_hashed_like_the_same_files(
    tiny_model: Path, hub: str, tmp_path: Path
) -> None:
    code, report, err = verify(f"hf://{REPO}@main", hub, tmp_path / "hf", tmp_path / "log")
    assert code == 0, (report, err[-2000:])
    expected = artifact_digest(tiny_model)
    assert report["digest"] == expected.digest and report["files"] == expected.files
    snapshot = tmp_path / "hf" / "hub" / "models--garden--tiny-llama" / "snapshots" / COMMIT
    assert (snapshot / "config.json").is_file()  # in the Hub cache (the pod's cache volume)


def test_unknown_hf_repository_is_a_verification_error(hub: str, tmp_path: Path) -> None:
    code, report, _ = verify("hf://garden/missing@main", hub, tmp_path / "hf", tmp_path / "log")
    assert code == 1 and "hf://garden/missing@main" in str(report["error"])


def test_a_snapshot_already_in_a_shared_cache_is_not_downloaded_again(
    tiny_model: Path, hub: str, hub_downloads: list[str], tmp_path: Path
) -> None:
    """What spec.modelCache relies on for hf://: a second pod on the same cache folder, at the
    same commit, gets the snapshot without one file sent."""
    uri = f"hf://{REPO}@{COMMIT}"
    code, first, err = verify(uri, hub, tmp_path / "shared", tmp_path / "log-1")
    assert code == 0, (first, err[-2000:])
    sent = len(hub_downloads)
    assert sent == len([p for p in tiny_model.rglob("*") if p.is_file()])
    code, second, err = verify(uri, hub, tmp_path / "shared", tmp_path / "log-2")
    assert code == 0, (second, err[-2000:])
    assert len(hub_downloads) == sent and second["digest"] == first["digest"]
