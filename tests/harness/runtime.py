"""Run programs in the CPU ML runtime from tests (the runtime is found via MODEL_GARDEN_RUNTIME_PYTHON)."""

from __future__ import annotations

import signal
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


def ctrl_c_reaches_python() -> None:
    """preexec for a CLI process a test interrupts as Ctrl-C would: SIGINT back to its default.

    A process started with SIGINT ignored (anything under a shell's `cmd &`, as CI may run the
    suite) passes that on, and Python then installs no KeyboardInterrupt handler: the SIGINT
    the test sends would be lost. A terminal's foreground process never has it ignored.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
