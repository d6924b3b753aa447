"""``model-garden eval`` as a user runs it: a LoRA version trained by ``mg train --local`` and
its base (imported as a version) scored on held-out data with the trainer's own loss; the
figures are saved with the version, the report (samples included) beside its artifact."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from cli_home import PROMPT, lora_and_base, mg

from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.local.store import LocalStore

pytestmark = pytest.mark.ml


@pytest.fixture(scope="module")
def home(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pets-v1 (LoRA, trained here), tiny-v1 (its base, imported), and held-out rows."""
    root = tmp_path_factory.mktemp("cli-eval")
    env = lora_and_base(root, tiny_model, rows=160, max_steps=16)
    held = write_jsonl(root / "held.jsonl", alpaca_rows(24, seed=7))
    return {"env": env, "root": root, "held": held, "store": LocalStore(root / "home")}


@pytest.fixture(scope="module")
def evaluated(home: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name in ("pets-v1", "tiny-v1"):
        proc = mg(
            home["env"],
            *("eval", name, "--dataset", str(home["held"]), "--format", "alpaca"),
            *("--prompt", PROMPT, "--prompt", "Describe the pets.", "--max-new-tokens", "12"),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out[name] = proc.stdout
    return out


def test_loss_and_perplexity_are_printed_and_saved_with_the_version(
    home: dict[str, Any], evaluated: dict[str, Any]
) -> None:
    assert f"evaluated pets-v1 on {home['held']}: loss " in evaluated["pets-v1"]
    assert "CO2e (" in evaluated["pets-v1"]
    ev = {
        name: home["store"].get("ModelVersion", name)["status"]["evaluation"]
        for name in ("pets-v1", "tiny-v1")
    }
    for got in ev.values():
        assert got["dataset"] == str(home["held"])
        assert got["examples"] == 24 and got["tokens"] > 24
        assert math.isclose(got["perplexity"], math.exp(got["loss"]), rel_tol=1e-9)
        assert got["energyKwh"] > 0 and got["emissionsKg"] > 0
    # the fine-tune learnt the task: lower loss than its base on data it never saw
    assert ev["pets-v1"]["loss"] < ev["tiny-v1"]["loss"], ev
    ops = home["store"].get("ModelVersion", "pets-v1")["status"]["carbonByOperation"]
    assert ops["evaluation"]["count"] >= 1
    assert ops["evaluation"]["emissionsKg"] >= ev["pets-v1"]["emissionsKg"]
    table = mg(home["env"], "versions", "get", "pets-v1").stdout
    assert "evaluation" in table and "perplexity" in table


def test_the_report_with_samples_sits_beside_the_artifact(
    home: dict[str, Any], evaluated: dict[str, Any]
) -> None:
    mv = home["store"].get("ModelVersion", "pets-v1")
    artifact = home["store"].local_path(mv["spec"]["artifact"]["uri"])
    report = json.loads((artifact.parent / "eval.json").read_text())
    assert mv["status"]["evaluation"]["report"].endswith("/v1/eval.json")
    assert report["loss"] == mv["status"]["evaluation"]["loss"]
    assert [s["prompt"] for s in report["samples"]] == [PROMPT, "Describe the pets."]
    # Every prompt gets its greedy completion. What a barely trained tiny model says is not
    # asserted: it may stop at once, or say only special tokens, which decode to "" (both seen
    # in CI: CPU training is not bit-identical across machines).
    assert all(isinstance(s["completion"], str) for s in report["samples"]), report["samples"]
    assert evaluated["pets-v1"].count("  → ") == 2, "the CLI shows each sample"
    assert 'prompt: "Describe the pets.\\n\\na red cat"' in evaluated["pets-v1"]
    # the artifact itself is untouched: the version stays verified
    ready = [c for c in mv["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"


def test_the_exported_card_shows_the_evaluation(
    home: dict[str, Any], evaluated: dict[str, Any]
) -> None:
    out = home["root"] / "pets-merged"
    proc = mg(home["env"], "export", "pets-v1", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    card = (out / "README.md").read_text()
    assert "## Evaluation" in card and f"On `{home['held']}` (24 examples" in card


def test_a_bad_dataset_line_is_named(home: dict[str, Any]) -> None:
    bad = home["root"] / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": 3}\n')
    proc = mg(home["env"], "eval", "tiny-v1", "--dataset", str(bad), "--format", "alpaca")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: eval of tiny-v1 failed: DatasetError")
    assert "line 2" in lines[0]
