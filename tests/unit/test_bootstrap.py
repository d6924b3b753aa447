"""scripts/bootstrap.sh: a failed build stops it, and the main job's mode builds no kube-apiserver.

Each test runs the real script in a scratch copy of the project whose build scripts are
replaced by stand-ins that record being called (the real builds take minutes and are exercised
by every other test of the suite).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY_PHASES = {
    "build-envtest.sh": "envtest",
    "build-node.sh": "node",
    "fetch-kube-tools.sh": "kube-tools",
    "build-checkov.sh": "checkov",
    "fetch-helm3.sh": "helm3",
    "build-llama-cpp.sh": "llama-cpp",
}
"""Scripts bootstrap.sh runs in its full mode, besides the runtime and the images."""


def _project(tmp_path: Path, runtime_script: str) -> Path:
    """A copy of what bootstrap.sh needs, with recording stand-ins for the heavy builds."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, project / name)
    (project / "operator" / "model_garden").mkdir(parents=True)
    (project / "operator" / "model_garden" / "__init__.py").write_text("")
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", project / "scripts" / "bootstrap.sh")
    calls = project / "calls"
    scripts = {"build-cpu-runtime.sh": runtime_script}
    for name, call in HEAVY_PHASES.items():
        scripts[name] = f'echo {call} >> {calls}\necho "$PWD/{call}"\n'
    scripts["build-images"] = f'echo images >> {calls}\necho "export MODEL_GARDEN_IMAGES=x"\n'

    for name, body in scripts.items():
        (project / "scripts" / name).write_text(f"#!/usr/bin/env bash\nset -e\n{body}")
    return project


def _recording_runtime(tmp_path: Path) -> str:
    """A runtime build that records being called and prints its export line."""
    return (
        f"echo runtime >> {tmp_path}/project/calls\n"
        'echo "export MODEL_GARDEN_RUNTIME_PYTHON=/usr/bin/python3"\n'
    )


def _bootstrap(project: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "bash",
            "-c",
            f'MODEL_GARDEN_BOOTSTRAP={mode} source scripts/bootstrap.sh && echo "REACHED $MODEL_GARDEN_RUNTIME_PYTHON"',
        ],
        cwd=project,
        env={k: v for k, v in os.environ.items() if not k.startswith("MODEL_GARDEN_")},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("mode", ["all", "runtime"])
def test_a_failed_runtime_build_stops_the_bootstrap(tmp_path: Path, mode: str) -> None:
    # The runtime script prints its export line, then fails (as a half-done install would).
    project = _project(
        tmp_path, 'echo "export MODEL_GARDEN_RUNTIME_PYTHON=/usr/bin/python3"\nexit 3\n'
    )
    proc = _bootstrap(project, mode)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "REACHED" not in proc.stdout


def test_the_main_jobs_mode_builds_the_runtime_only(tmp_path: Path) -> None:
    project = _project(tmp_path, _recording_runtime(tmp_path))
    proc = _bootstrap(project, "runtime")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "REACHED /usr/bin/python3" in proc.stdout
    assert (project / "calls").read_text().split() == ["runtime"]


def test_the_quickstart_script_asks_for_the_runtime_only() -> None:
    text = (ROOT / "scripts" / "quickstart").read_text()
    assert "MODEL_GARDEN_BOOTSTRAP=runtime source scripts/bootstrap.sh" in text


def test_the_full_bootstrap_builds_everything(tmp_path: Path) -> None:
    project = _project(tmp_path, _recording_runtime(tmp_path))
    proc = _bootstrap(project, "all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = {*HEAVY_PHASES.values(), "runtime", "images"}
    assert sorted((project / "calls").read_text().split()) == sorted(expected)
