"""What the CLI tests of tests/ml share: running ``model-garden`` as a user does, and a local
home with a LoRA version trained by ``mg train --local`` (pets-v1) beside its base imported as
a merged version (tiny-v1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.local.store import LocalStore

CLI = str(Path(sys.executable).with_name("model-garden"))
PROMPT = "Describe the pets.\n\na red cat"


def mg(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def home_env(root: Path) -> dict[str, str]:
    """A local home of its own, and no cluster: local mode whatever this machine has."""
    return {
        **os.environ,
        "MODEL_GARDEN_HOME": str(root / "home"),
        "MODEL_GARDEN_CONFIG": str(root / "config.yaml"),
        "KUBECONFIG": str(root / "no-kubeconfig"),
    }


def wait_ready(env: dict[str, str], name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = mg(env, "versions", "get", name, "-o", "json")
        conditions = (json.loads(got.stdout).get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            return
        time.sleep(1)
    raise AssertionError(f"{name} was not Ready in {timeout}s")


def lora_and_base(root: Path, tiny_model: Path, rows: int, max_steps: int) -> dict[str, str]:
    """Train pets-v1 (LoRA on ``rows`` alpaca rows) and import tiny-v1; the home's env."""
    data = write_jsonl(root / "pets.jsonl", alpaca_rows(rows, seed=0))
    env = home_env(root)
    trained = mg(
        env,
        *("train", "--local", "--base-model", str(tiny_model), "--dataset", str(data)),
        *("--format", "alpaca", "--method", "lora", "--max-steps", str(max_steps)),
        *("--max-seq-length", "128", "--learning-rate", "3e-2"),
        *("--name", "pets", "--model", "pets", "--wait"),
    )
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    LocalStore(root / "home").create(
        {
            "apiVersion": "modelgarden.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": "tiny-v1"},
            "spec": {
                "model": "tiny",
                "version": 1,
                "artifact": {"uri": f"file://{tiny_model}", "format": "merged"},
            },
        }
    )
    wait_ready(env, "tiny-v1")
    return env
