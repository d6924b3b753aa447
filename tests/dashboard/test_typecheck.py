"""svelte-check (TypeScript and Svelte diagnostics) finds no error in dashboard/."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import run_node


def test_svelte_check_finds_no_error(node_modules: Path) -> None:
    done = run_node(
        node_modules,
        "svelte-check/bin/svelte-check",
        "--tsconfig",
        "./tsconfig.json",
        "--output",
        "machine",
    )
    output = done.stdout + done.stderr
    summary = re.search(r"COMPLETED \d+ FILES (\d+) ERRORS (\d+) WARNINGS", output)
    assert summary, output[-4000:]
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert summary.group(1) == "0", "\n".join(errors)
    assert done.returncode == 0, output[-4000:]
