"""scripts/build-images: tags from pyproject's version, input-keyed cache (a second run takes
seconds), and a clear refusal for the GPU images where their bases cannot be pulled."""

from __future__ import annotations

import os
import subprocess
import time
import tomllib

import pytest

from .conftest import REPO

pytestmark = pytest.mark.images

SCRIPT = REPO / "scripts" / "build-images"


def build(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=900, env=env, cwd=REPO
    )


def test_help_says_where_gpu_images_are_built() -> None:
    result = build("--help")
    assert result.returncode == 0
    assert "--base IMAGE" in result.stdout and "--offline" in result.stdout
    assert "not built in CI here" in result.stdout


def test_second_run_is_a_cache_hit_and_tags_the_package_version(images: dict[str, str]) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert images["operator"] == f"ghcr.io/model-garden/operator:{version}"
    build("--offline", "operator")  # whatever changed since the bootstrap is built now
    start = time.monotonic()
    again = build("--offline", "operator")
    elapsed = time.monotonic() - start
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stderr
    assert f"export MODEL_GARDEN_IMAGES='ghcr.io/model-garden/operator:{version}'" in again.stdout
    assert elapsed < 30, f"a cache hit took {elapsed:.0f}s"


def test_gpu_image_offline_without_a_base_is_refused() -> None:
    result = build("--offline", "trainer")
    assert result.returncode == 1
    assert "needs its GPU base" in result.stderr and "--base" in result.stderr


def test_unknown_image_is_refused() -> None:
    result = build("nonsense")
    assert result.returncode == 2
    assert "unknown argument" in result.stderr
