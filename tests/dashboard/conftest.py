"""The dashboard's own checks (vitest, svelte-check, a reproducible build) run with the npm
modules scripts/build-dashboard-deps.sh caches outside the checkout; bootstrap exports where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

MODULES_ENV = "MODEL_GARDEN_DASHBOARD_MODULES"
REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "dashboard"
STATIC = REPO / "operator" / "model_garden" / "readapi" / "static"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """dashboard/node_modules, a symlink to the cached install (made here when missing)."""
    folder = os.environ.get(MODULES_ENV)
    if not folder:
        pytest.fail(
            f"${MODULES_ENV} is not set: `source scripts/bootstrap.sh` (or run"
            " scripts/build-dashboard-deps.sh and export the folder it prints)"
        )
    modules = Path(folder) / "node_modules"
    if not (modules / "vite").is_dir():
        pytest.fail(f"{modules} holds no vite: rerun scripts/build-dashboard-deps.sh")
    if shutil.which("node") is None:
        pytest.fail("node is not on PATH (Node 20 is needed)")
    link = DASHBOARD / "node_modules"
    if link.is_symlink() or not link.exists():
        if not (link.is_symlink() and link.resolve() == modules.resolve()):
            # Replace atomically: another test or scripts/build-dashboard may be using it.
            tmp = DASHBOARD / f"node_modules.tmp.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(modules)
            tmp.replace(link)
    return link


def run_node(
    node_modules: Path, tool: str, *args: str, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """Run a package's CLI (``vite/bin/vite.js`` …) with node in dashboard/."""
    return subprocess.run(
        ["node", str(node_modules / tool), *args],
        cwd=DASHBOARD,
        env={**os.environ, "CI": "1", "NO_COLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
