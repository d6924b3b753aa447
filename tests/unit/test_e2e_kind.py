"""scripts/e2e-kind says why it cannot run where Docker or kind is missing, and fails only when
asked to run (not with --if-possible)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "e2e-kind"


def _run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


@pytest.fixture
def bare_path(tmp_path: Path) -> Path:
    """A PATH with only what the script needs before it looks for docker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "id", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    return bin_dir


def test_without_docker_it_says_why_and_fails_when_asked_to_run(bare_path: Path) -> None:
    proc = _run(bare_path)
    assert proc.returncode == 1
    assert "cannot run here: no docker" in proc.stderr
    assert "scripts/test -m cluster" in proc.stderr  # where the same scenario does run


def test_if_possible_turns_the_refusal_into_success(bare_path: Path) -> None:
    proc = _run(bare_path, "--if-possible")
    assert proc.returncode == 0 and "cannot run here" in proc.stderr


def test_a_docker_whose_daemon_does_not_answer_is_named(bare_path: Path) -> None:
    docker = bare_path / "docker"
    docker.write_text("#!/bin/sh\nexit 1\n")
    docker.chmod(0o755)
    (bare_path / "sh").symlink_to(shutil.which("sh") or "/bin/sh")
    proc = _run(bare_path)
    assert proc.returncode == 1 and "daemon does not answer" in proc.stderr


def test_unknown_argument_is_a_usage_error(bare_path: Path) -> None:
    proc = _run(bare_path, "--bogus")
    assert proc.returncode == 2 and "unknown argument --bogus" in proc.stderr
