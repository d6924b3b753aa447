"""The dashboard's vitest suite (logic modules and component tests in jsdom) passes."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import run_node


def test_vitest_suite_passes(node_modules: Path, tmp_path: Path) -> None:
    report = tmp_path / "vitest.json"
    done = run_node(
        node_modules,
        "vitest/vitest.mjs",
        "run",
        "--reporter=json",
        f"--outputFile={report}",
    )
    assert report.is_file(), done.stdout[-4000:] + done.stderr[-4000:]
    result = json.loads(report.read_text())
    failed = [
        f"{t['fullName']}: {' '.join(t.get('failureMessages', []))[:400]}"
        for suite in result["testResults"]
        for t in suite["assertionResults"]
        if t["status"] != "passed"
    ]
    assert failed == [], "\n".join(failed)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert result["numPassedTests"] > 0
    assert result["numPassedTests"] == result["numTotalTests"]
