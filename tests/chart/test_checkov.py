"""checkov (its own venv: scripts/build-checkov.sh) on the manifests of every value set: no failed
check. Suppressions are annotations on the objects (checkov.io/skipN), each with its reason in
the chart's templates; this test also keeps their number in view."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.tools import checkov

from .render import VALUE_SETS, render

pytestmark = pytest.mark.chart


def checkov_reports(folder: Path) -> list[dict[str, Any]]:
    """checkov's JSON reports on the manifests in ``folder`` (one per framework it ran)."""
    proc = subprocess.run(
        [
            checkov(), "-d", str(folder), "--framework", "kubernetes", "--skip-download",
            "--compact", "-o", "json",
        ],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    report = json.loads(proc.stdout)
    return report if isinstance(report, list) else [report]


def failed_checks(reports: list[dict[str, Any]]) -> list[str]:
    """One line per failed check: its id, the resource and the file."""
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]


ALLOWED_SKIPS = {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_40", "CKV_K8S_38", "CKV_K8S_8", "CKV_K8S_9"}


def test_checkov_passes_on_every_rendered_value_set(tmp_path: Path) -> None:
    for vs in VALUE_SETS:
        (tmp_path / f"{vs.name}.yaml").write_text(yaml.safe_dump_all(render(vs)))
    reports = checkov_reports(tmp_path)
    failed = failed_checks(reports)
    assert failed == [], "\n".join(failed)
    passed = sum(r["summary"]["passed"] for r in reports)
    assert passed > 100, "checkov checked almost nothing: did it find the manifests?"
    skipped = {c["check_id"] for r in reports for c in r["results"]["skipped_checks"]}
    assert skipped <= ALLOWED_SKIPS, skipped - ALLOWED_SKIPS
