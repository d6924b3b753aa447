"""checkov on every Containerfile (the GPU ones too): no failed check; each suppression is a
``checkov:skip`` comment with its reason in the Containerfile itself.

checkov only recognises files named ``Dockerfile``, so each Containerfile is scanned as a copy
under that name (the same bytes).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.tools import checkov

from .conftest import REPO

pytestmark = pytest.mark.images

NAMES = ["operator", "runtime-cpu", "trainer", "server"]


def test_checkov_passes_on_every_containerfile(tmp_path: Path) -> None:
    for name in NAMES:
        (tmp_path / name).mkdir()
        shutil.copy(REPO / "images" / name / "Containerfile", tmp_path / name / "Dockerfile")
    proc = subprocess.run(
        [checkov(), "-d", str(tmp_path), "--framework", "dockerfile", "--skip-download"]
        + ["--output", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['file_path']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] >= 50 * len(NAMES), "checkov checked almost nothing"
    skipped = report["results"]["skipped_checks"]
    reasons = [c["check_result"]["suppress_comment"].strip() for c in skipped]
    assert all(reasons), "a suppression without a reason"


@pytest.mark.parametrize("name", NAMES)
def test_each_suppression_says_why(name: str) -> None:
    text = (REPO / "images" / name / "Containerfile").read_text()
    for match in re.finditer(r"checkov:skip=(\w+):?(.*)", text):
        assert len(match.group(2).strip()) > 20, f"{name}: {match.group(1)} has no reason"
