"""``model-garden train --local -f`` with spec.evaluation: the version shows status.evaluation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from model_garden.api import ModelVersion
from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.local.store import LocalStore

pytestmark = pytest.mark.ml

CLI = str(Path(sys.executable).with_name("model-garden"))


def test_a_manifest_with_evaluation_gives_the_version_its_evaluation(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "pets.jsonl", alpaca_rows(60))
    held_out = write_jsonl(tmp_path / "held-out.jsonl", alpaca_rows(6, seed=3))
    manifest = {
        "apiVersion": "modelgarden.dev/v1alpha1",
        "kind": "FineTuneJob",
        "metadata": {"name": "judged"},
        "spec": {
            "baseModel": {"uri": f"file://{tiny_model}"},
            "dataset": {"uri": f"file://{data}", "format": "alpaca", "maxSeqLength": 128},
            "hyperparameters": {"maxSteps": 3, "learningRate": "3e-3"},
            "output": {"model": "judged"},
            "evaluation": {
                "prompts": ["What sound does a cat make?"],
                "maxNewTokens": 4,
                "dataset": f"file://{held_out}",
            },
        },
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    home = tmp_path / "home"
    env = {
        **os.environ,
        "MODEL_GARDEN_HOME": str(home),
        "MODEL_GARDEN_CONFIG": str(tmp_path / "config.yaml"),
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
    }
    done = subprocess.run(
        [CLI, "train", "--local", "-f", str(path), "--wait", "--timeout", "600"],
        env=env,
        capture_output=True,
        text=True,
        timeout=700,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    store = LocalStore(home)
    (mv,) = store.list(ModelVersion)
    ev = mv.status.evaluation
    assert ev is not None and mv.spec.evaluation is not None
    assert ev == mv.spec.evaluation.to_status()
    assert ev.examples == 6 and ev.loss > 0 and ev.dataset == f"file://{held_out}"
    assert ev.report is not None
    report = store.local_path(ev.report)
    assert report.is_file() and report.parent == store.local_path(mv.spec.artifact.uri)
    assert mv.status.digest == mv.spec.artifact.digest  # verified, eval.json included
