"""Find the external programs the chart and image tests run (helm 3 and 4, checkov).

``source scripts/bootstrap.sh`` builds or fetches each one outside the checkout and exports a
variable naming it; a test without it must say which variable and which script, not fail on a
bare FileNotFoundError.
"""

from __future__ import annotations

import os
from pathlib import Path


def tool(var: str, script: str, inside: str | None = None) -> Path:
    """The program ``$var`` names (``$var/inside`` when the variable names a folder of tools)."""
    value = os.environ.get(var)
    path = Path(value) / inside if value and inside else Path(value or "")
    if not value or not path.is_file():
        what = f"a folder holding {inside}" if inside else "the program"
        raise RuntimeError(
            f"{var} does not name {what}: `source scripts/bootstrap.sh` makes it ({script})"
        )
    return path


def checkov() -> str:
    """checkov in its own venv (scripts/build-checkov.sh), for the chart and Containerfile scans."""
    return str(tool("MODEL_GARDEN_CHECKOV", "scripts/build-checkov.sh"))
