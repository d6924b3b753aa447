"""``model-garden dashboard`` and ``python -m model_garden.readapi``: real processes on a free port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from model_garden.local.store import LocalStore

from .fill import mv, put


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], home: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "MODEL_GARDEN_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/#token=(\S+)", line)
    assert match, line
    base, token = match.groups()
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/api/v1/info", timeout=1)
            return proc, f"{base} {token}"
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("how", ["cli", "module"])
def test_local_mode_prints_a_loopback_url_and_its_token_opens_writes(
    tmp_path: Path, how: str
) -> None:
    home = tmp_path / "home"
    store = LocalStore(home)  # versions only: the CLI's reconciler starts no process for them
    put(store, mv("pets", 1))
    put(store, mv("pets", 2))
    port = str(free_port())
    if how == "cli":
        args = [sys.executable, "-m", "model_garden.cli.main", "dashboard", "--home", str(home)]
        args += ["--port", port, "--no-browser"]
    else:
        args = [sys.executable, "-m", "model_garden.readapi", "--local", "--home", str(home)]
        args += ["--port", port, "--no-reconcile"]
    proc, where = start(args, home)
    base, token = where.split()
    try:
        assert base == f"http://127.0.0.1:{port}"
        info = httpx.get(f"{base}/api/v1/info").json()
        assert info["mode"] == "local"
        versions = httpx.get(f"{base}/api/v1/modelversions").json()
        assert versions["total"] == 2
        url = f"{base}/api/v1/modelversions/default/pets-v2/promote"
        assert httpx.post(url, json={"stage": "staging"}).status_code == 401
        ok = httpx.post(
            url, json={"stage": "staging"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200 and ok.json()["spec"]["stage"] == "staging"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_local_mode_refuses_another_address() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "model_garden.readapi", "--local", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "127.0.0.1 only" in proc.stderr
