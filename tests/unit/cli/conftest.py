"""CLI tests: the real commands in-process (CliRunner) or as subprocesses, on a store in tmp_path.

The trainer is :mod:`fake_trainer` and the server :mod:`fake_server` (the ML runtime is not needed
here): ``write_fake_runtime`` makes a "runtime Python" that runs them for ``-m
model_garden.training`` / ``-m model_garden.serving`` and this interpreter for anything else (the
verification Job's ``model_garden.operator.verify`` runs for real).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from model_garden.cli.main import cli
from model_garden.local import pods
from model_garden.local.store import LocalStore

HERE = Path(__file__).resolve().parent


@dataclass
class Env:
    home: Path
    base: Path
    dataset: Path
    config: Path
    vars: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, **env: str) -> Result:
        return CliRunner().invoke(
            cli, list(args), input=stdin, env={**self.vars, **env}, catch_exceptions=False
        )


def write_fake_runtime(folder: Path) -> Path:
    script = folder / "python"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-m" ] && [ "$2" = "model_garden.training" ]; then\n'
        "  shift 2\n"
        f'  exec {sys.executable} {HERE / "fake_trainer.py"} "$@"\n'
        "fi\n"
        'if [ "$1" = "-m" ] && [ "$2" = "model_garden.serving" ]; then\n'
        "  shift 2\n"
        f'  exec {sys.executable} {HERE / "fake_server.py"} "$@"\n'
        "fi\n"
        f'exec {sys.executable} "$@"\n',
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """Local mode on a fresh home, no cluster configured, the fake trainer as the runtime;
    whatever pod a test left running is stopped at the end."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    dataset = tmp_path / "data.jsonl"
    dataset.write_text('{"instruction": "a", "output": "b"}\n')
    values = {
        "MODEL_GARDEN_HOME": str(tmp_path / "home"),
        "MODEL_GARDEN_CONFIG": str(tmp_path / "config.yaml"),
        "MODEL_GARDEN_RUNTIME_PYTHON": str(write_fake_runtime(tmp_path)),
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "FAKE_TRAINER_SECONDS": "1",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield Env(tmp_path / "home", base, dataset, tmp_path / "config.yaml", values)
    store = LocalStore(tmp_path / "home")
    for pod in store.list_raw("Pod"):
        pods.stop(store, pod["metadata"]["name"], grace=10)
        shutil.rmtree(store.scratch_dir(pod["metadata"]["name"]), ignore_errors=True)


@pytest.fixture()
def trained(env: Env) -> Env:
    """One job (j1, model m) trained to its verified ModelVersion m-v1."""
    result = env.run(*train_args(env, "j1"), "--wait")
    assert result.exit_code == 0, result.output
    return env


def train_args(env: Env, name: str, model: str = "m") -> list[str]:
    return [
        "train",
        "--base-model",
        str(env.base),
        "--dataset",
        str(env.dataset),
        "--name",
        name,
        "--model",
        model,
        "--max-steps",
        "4",
    ]


def one_line_error(result: Result) -> str:
    """The error a command printed: exactly one line on stderr, ``Error: …``."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    return lines[0]


Runner = Callable[..., Result]
__all__ = ["Env", "one_line_error", "train_args", "write_fake_runtime", "os"]
