"""``mg dataset stats`` with the tiny model's real tokenizer, run in the ML runtime as the trainer
counts tokens (the formatting is tested in tests/unit/cli/test_dataset_commands.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from model_garden.demo.data import alpaca_rows, write_jsonl

pytestmark = pytest.mark.ml

CLI = str(Path(sys.executable).with_name("model-garden"))


def _stats(data: Path, model: Path, max_seq_length: int) -> dict[str, Any]:
    proc = subprocess.run(
        [CLI, "dataset", "stats", str(data), "--model", str(model), "-o", "json"]
        + ["--max-seq-length", str(max_seq_length)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_token_statistics_and_truncation_with_the_models_tokenizer(
    tiny_model: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "pets.jsonl", alpaca_rows(40))
    whole = _stats(data, tiny_model, 4096)
    assert (whole["rows"], whole["examples"], whole["format"]) == (40, 40, "alpaca")
    assert 0 < whole["minTokens"] <= whole["meanTokens"] <= whole["p95Tokens"] <= whole["maxTokens"]
    assert whole["truncated"] == 0 and whole["truncatedLines"] == []
    assert whole["trainableTokens"] < whole["tokens"]  # the prompt carries no loss
    assert whole["template"]

    cut = (whole["minTokens"] + whole["maxTokens"]) // 2
    assert whole["minTokens"] < cut < whole["maxTokens"]
    some = _stats(data, tiny_model, cut)
    assert 0 < some["truncated"] < 40
    assert some["maxTokens"] <= cut and some["minTokens"] == whole["minTokens"]
    assert len(some["truncatedLines"]) > 0
