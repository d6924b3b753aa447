"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.runtime import build_tiny_model
from model_garden.runtime import RUNTIME_ENV


@pytest.fixture(scope="session")
def ml_runtime() -> str:
    """The CPU ML runtime's Python; ML tests fail (not skip) without it: CI always builds it."""
    python = os.environ.get(RUNTIME_ENV)
    if not python:
        pytest.fail(f'{RUNTIME_ENV} is not set: run `eval "$(scripts/build-cpu-runtime.sh)"`')
    return python


@pytest.fixture(scope="session")
def tiny_model(ml_runtime: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama (≈120k parameters) + ChatML tokenizer, built once per test session."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "model")
