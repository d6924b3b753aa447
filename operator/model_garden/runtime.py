"""How the control plane finds the ML runtime (torch, transformers, vLLM …) to run programs in.

The one documented mechanism (DESIGN.md, Principles): the environment variable
``MODEL_GARDEN_RUNTIME_PYTHON`` names the runtime's Python. ``scripts/build-cpu-runtime.sh``
builds the CPU runtime into a cache and prints the ``export`` line that sets it. In a container
image the ML packages sit next to the control plane, so the variable is unset and the current
interpreter is used.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

RUNTIME_ENV = "MODEL_GARDEN_RUNTIME_PYTHON"
SOURCE_ROOT = Path(__file__).resolve().parent.parent
"""operator/: put on PYTHONPATH so the runtime's Python imports this very checkout."""

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


class RuntimeMissing(RuntimeError):
    """The ML runtime is neither configured nor importable from this interpreter."""


def runtime_python(required: bool = True) -> str:
    """The Python that has the ML runtime: $MODEL_GARDEN_RUNTIME_PYTHON, else this interpreter."""
    configured = os.environ.get(RUNTIME_ENV)
    if configured:
        if not Path(configured).exists():
            raise RuntimeMissing(
                f"{RUNTIME_ENV}={configured} does not exist; rebuild it with "
                '`eval "$(scripts/build-cpu-runtime.sh)"`'
            )
        return configured
    if required:
        try:
            import torch  # noqa: F401
        except ImportError as exc:
            raise RuntimeMissing(
                f'no ML runtime: set {RUNTIME_ENV} with `eval "$(scripts/build-cpu-runtime.sh)"`'
            ) from exc
    return sys.executable


def runtime_env(offline: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a program run in the runtime: this checkout importable, offline by default."""
    env = dict(os.environ)
    paths = [str(SOURCE_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    if offline:
        for key, value in OFFLINE_ENV.items():
            env.setdefault(key, value)
    env.update(extra or {})
    return env
