"""``model-garden train --local --wait`` as a user runs it: real trainer processes on the tiny
model, two at once on one store, planned by the operator's planners."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from model_garden.api import FineTuneJob, ModelVersion
from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.local.store import LocalStore

pytestmark = pytest.mark.ml

STEPS = 12
CLI = str(Path(sys.executable).with_name("model-garden"))


def train_command(model: Path, data: Path, name: str) -> list[str]:
    return [
        CLI,
        "train",
        "--local",
        "--base-model",
        str(model),
        "--dataset",
        str(data),
        "--format",
        "alpaca",
        "--method",
        "lora",
        "--max-steps",
        str(STEPS),
        "--max-seq-length",
        "128",
        "--eval-split",
        "0.1",
        "--learning-rate",
        "3e-3",
        "--name",
        name,
        "--model",
        "pets",
        "--wait",
        "--timeout",
        "800",
    ]


@pytest.fixture(scope="module")
def runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two ``train --local --wait`` commands started together on one home."""
    root = tmp_path_factory.mktemp("cli-local")
    data = write_jsonl(root / "pets.jsonl", alpaca_rows(200))
    env = {
        **os.environ,
        "MODEL_GARDEN_HOME": str(root / "home"),
        "MODEL_GARDEN_CONFIG": str(root / "config.yaml"),
        "KUBECONFIG": str(root / "no-kubeconfig"),
    }
    procs = {
        name: subprocess.Popen(
            train_command(tiny_model, data, name),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("first", "second")
    }
    out: dict[str, Any] = {"home": root / "home"}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        out[name] = (proc.returncode, stdout, stderr)
    return out


@pytest.mark.parametrize("name", ["first", "second"])
def test_each_command_follows_its_job_to_a_verified_version(
    runs: dict[str, Any], name: str
) -> None:
    code, out, err = runs[name]
    assert code == 0, out[-3000:] + err[-3000:]
    assert f"finetunejob/{name} created (local store" in out
    steps = [int(m) for m in re.findall(rf"step (\d+)/{STEPS} ", out)]
    assert steps and steps[-1] == STEPS and steps == sorted(steps), out
    assert re.search(r"CO2e  \[Running\]", out), "progress came from the running trainer"
    done = re.search(
        rf"^FineTuneJob {name} succeeded: ModelVersion (pets-v[12]), eval loss", out, re.M
    )
    assert done, out
    assert "(Verified)" in out


def test_the_store_stays_valid_and_versions_are_distinct(runs: dict[str, Any]) -> None:
    home: Path = runs["home"]
    store = LocalStore(home)
    jobs = {j.metadata.name: j for j in store.list(FineTuneJob)}
    assert set(jobs) == {"first", "second"}
    versions = {mv.metadata.name: mv for mv in store.list(ModelVersion)}
    assert set(versions) == {"pets-v1", "pets-v2"}
    assert {j.status.model_version for j in jobs.values()} == {"pets-v1", "pets-v2"}
    for mv in versions.values():
        ready = next(c for c in mv.status.conditions if c.type == "Ready")
        assert (ready.status, ready.reason) == ("True", "Verified")
        assert str(mv.spec.artifact.format) == "adapter"  # LoRA without merge: the adapter
        folder = store.local_path(mv.spec.artifact.uri)
        assert (folder / "adapter_config.json").is_file(), folder
        assert mv.status.digest == mv.spec.artifact.digest
        metrics = mv.spec.metrics
        assert float(metrics["evalLoss"]) < float(metrics["initialEvalLoss"])
        assert (
            mv.spec.training_carbon is not None and float(mv.spec.training_carbon.emissions_kg) > 0
        )
    for path in (home / "objects").rglob("*"):
        if path.is_file():
            assert path.suffix == ".yaml" and isinstance(yaml.safe_load(path.read_text()), dict), (
                path
            )


def test_nothing_is_left_running(runs: dict[str, Any]) -> None:
    from model_garden.local import pods

    store = LocalStore(runs["home"])
    for pod in store.list_raw("Pod"):
        assert not pods.running(store, pod["metadata"]["name"])
        assert pod["status"]["phase"] == "Succeeded"
