"""ruff and mypy are part of the suite, so CI refuses code that is not clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed in the dev environment (uv sync)"
    return found


@pytest.mark.parametrize(
    "argv",
    [
        ["ruff", "check", "operator", "tests", "bench"],
        ["ruff", "format", "--check", "operator", "tests", "bench"],
        ["mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_code_is_clean(argv: list[str]) -> None:
    proc = subprocess.run(
        [tool(argv[0]), *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
