"""Fixtures for the image tests: the images scripts/build-images built, and a way to run them.

CI builds them in scripts/bootstrap.sh (`scripts/build-images --offline`), which exports
MODEL_GARDEN_IMAGES and MODEL_GARDEN_IMAGE_ENGINE; without them these tests fail, not skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Built image tags by name (`operator`, `runtime-cpu`)."""
    tags = os.environ.get("MODEL_GARDEN_IMAGES", "").split()
    if not tags:
        pytest.fail(
            'MODEL_GARDEN_IMAGES is not set: run `eval "$(scripts/build-images --offline)"` '
            "(scripts/bootstrap.sh does it)"
        )
    return {tag.rsplit("/", 1)[-1].split(":", 1)[0]: tag for tag in tags}


@pytest.fixture(scope="session")
def engine() -> str:
    """The engine that runs containers: buildah builds but cannot run them, so podman then."""
    name = os.environ.get("MODEL_GARDEN_IMAGE_ENGINE", "podman")
    name = "podman" if name == "buildah" else name
    if not shutil.which(name):
        pytest.fail(f"{name} is not installed (scripts/bootstrap.sh installs podman)")
    return name


def engine_flags() -> list[str]:
    """Flags this kind of machine needs: no CAP_SYS_RESOURCE (runc cannot raise rlimits past the
    hard limit) and, on cgroup v1/hybrid hosts, runc rather than crun."""
    flags = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000"]
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists() and shutil.which("runc"):
        flags += ["--runtime", "runc"]
    return flags


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def run(engine: str) -> Run:
    """run(image, *args, entrypoint=None, user=None): the image as a restricted pod runs it —
    read-only root, no network, all capabilities dropped, no privilege escalation."""

    def _run(
        image: str, *args: str, entrypoint: str | None = None, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        cmd = [engine, "run", "--rm", "--read-only", "--network", "none", "--cap-drop", "ALL"]
        cmd += ["--security-opt", "no-new-privileges", *engine_flags()]
        if entrypoint is not None:
            cmd += ["--entrypoint", entrypoint]
        if user is not None:
            cmd += ["--user", user]
        cmd += [image, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    return _run
