"""The dashboard in Debian's Chromium (Playwright) against the read API in local mode, over a
local store filled by a real tiny training run (``mg train --local --wait``) and a served
deployment (``mg deploy --local --wait``): the data a researcher's laptop has after the
quickstart.

Chromium: ``$MODEL_GARDEN_CHROMIUM`` (default ``/usr/bin/chromium``; Playwright's own browser
downloads fail here by design). Screenshots of every page are kept in an artifacts folder
(``$MODEL_GARDEN_BROWSER_ARTIFACTS``, else under pytest's basetemp) named at the end of the run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.envtest import free_port
from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.local import pods
from model_garden.local.store import LocalStore

CLI = str(Path(sys.executable).with_name("model-garden"))
CHROMIUM_ENV = "MODEL_GARDEN_CHROMIUM"
ARTIFACTS_ENV = "MODEL_GARDEN_BROWSER_ARTIFACTS"
MODULES_ENV = "MODEL_GARDEN_DASHBOARD_MODULES"
REPO = Path(__file__).resolve().parents[2]
# TOOLCHAIN.md, "Dashboard": what Debian's Chromium needs here (no sandbox, GPU or network).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MODEL = "pets"
JOB = "pets-ft"
VERSION = "pets-v1"
NAMESPACE = "default"  # local mode's one namespace

_ARTIFACTS: list[Path] = []


def chromium_path() -> str:
    path = os.environ.get(CHROMIUM_ENV, "/usr/bin/chromium")
    if not Path(path).is_file():
        pytest.fail(f"no Chromium at {path}: `apt-get install chromium` or set ${CHROMIUM_ENV}")
    return path


def axe_path() -> Path:
    """axe-core's browser build from the dashboard's node_modules."""
    modules = Path(os.environ.get(MODULES_ENV) or REPO / "dashboard")
    path = modules / "node_modules" / "axe-core" / "axe.min.js"
    if not path.is_file():
        pytest.fail(f"no {path}: `npm ci` in dashboard/ or set ${MODULES_ENV}")
    return path


def mg(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class Garden:
    """The local home, its environment, the read API's URL and its write token."""

    home: Path
    env: dict[str, str]
    url: str
    token: str
    endpoint: str
    log: Path

    def api(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(f"{self.url}/api/v1/{path}", timeout=30, **kw)


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright's launch arguments: Debian's Chromium, not a downloaded one."""
    return {"executable_path": chromium_path(), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args() -> dict[str, Any]:
    return {"viewport": {"width": 1280, "height": 900}, "color_scheme": "light"}


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get(ARTIFACTS_ENV)
    folder = Path(named) if named else tmp_path_factory.mktemp("dashboard-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    _ARTIFACTS.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in _ARTIFACTS:
        shots = sorted(folder.glob("*.png"))
        terminalreporter.write_line(f"[browser] {len(shots)} screenshots in {folder}")


def _start_readapi(
    home: Path, env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[str], str, str]:
    """``python -m model_garden.readapi --local`` on a free port; its URL and printed token."""
    port = free_port()
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_garden.readapi", "--local", "--home", str(home),
         "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"read API exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        match = re.search(rf"{re.escape(url)}/#token=([\w.~%-]+)", log.read_text())
        if match:
            try:
                if httpx.get(f"{url}/api/v1/info", timeout=2).status_code == 200:
                    return proc, url, match.group(1)
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    _stop(proc)
    raise AssertionError(f"read API not up with a token in 120 s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def garden(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Garden]:
    """A local store with one real training run (pets-ft → pets-v1) and pets-v1 served, and the
    read API over it."""
    root = tmp_path_factory.mktemp("garden")
    data = write_jsonl(root / "pets.jsonl", alpaca_rows(240))
    env = {
        **os.environ,
        "MODEL_GARDEN_HOME": str(root / "home"),
        "MODEL_GARDEN_CONFIG": str(root / "config.yaml"),
        "KUBECONFIG": str(root / "no-kubeconfig"),
    }
    trained = mg(
        env, "train", "--local", "--base-model", str(tiny_model), "--dataset", str(data),
        "--format", "alpaca", "--method", "full", "--max-steps", "40", "--learning-rate", "3e-3",
        "--max-seq-length", "128", "--batch-size", "8", "--eval-split", "0.1",
        "--model", MODEL, "--name", JOB, "--wait",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    try:
        deployed = mg(
            env, "deploy", VERSION, "--local", "--max-model-len", "256", "--dtype", "float32",
            "--wait",
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        match = re.search(r"^serving \S+ at (http://127\.0\.0\.1:\d+/v1)$", deployed.stdout, re.M)
        assert match, deployed.stdout
        log = root / "readapi.log"
        proc, url, token = _start_readapi(root / "home", env, log)
        try:
            yield Garden(root / "home", env, url, token, match.group(1), log)
        finally:
            _stop(proc)
    finally:  # a failed test must not leave a vLLM server running
        store = LocalStore(root / "home")
        for pod in store.list_raw("Pod"):
            pods.stop(store, pod["metadata"]["name"], grace=30)
