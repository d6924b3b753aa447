"""Run programs in the CPU ML runtime from tests (the runtime is found via MODEL_GARDEN_RUNTIME_PYTHON)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from model_garden.runtime import runtime_env, runtime_python


def run_runtime(
    args: list[str], timeout: float = 600, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in the runtime, offline, with this checkout importable; raise on failure."""
    proc = subprocess.run(
        [runtime_python(), *args],
        env=runtime_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,  # type: ignore[arg-type]
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def build_tiny_model(out: Path, hidden: int = 64, layers: int = 2) -> Path:
    run_runtime(
        [
            "-m",
            "model_garden.demo.tiny_model",
            str(out),
            "--hidden",
            str(hidden),
            "--layers",
            str(layers),
        ]
    )
    return out
