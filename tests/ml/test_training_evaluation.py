"""spec.evaluation on a real tiny training run: figures in the result, the card, eval.json."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ml.test_training_support import (
    result_of,
    start_trainer,
    trainer_log,
    training_config,
    training_data,
    wait,
)
from model_garden.api.contracts import TERMINATION_MESSAGE_LIMIT, read_document
from model_garden.api.offline import EVAL_RESULT_FILE, EvalResult
from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.training.outputs import folder_digest

pytestmark = pytest.mark.ml

PROMPTS = ["What sound does a cat make?", "Name a dog breed. " * 40]


@pytest.fixture(scope="module")
def runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two short runs at once: one scored on its eval split (merged too), one on a held-out file."""
    root = tmp_path_factory.mktemp("training-eval")
    data = training_data(root, count=80)
    held_out = write_jsonl(root / "held-out.jsonl", alpaca_rows(12, seed=7))
    split = training_config(
        root / "split",
        tiny_model,
        data,
        steps=4,
        merge=True,
        evaluation={"prompts": PROMPTS, "maxNewTokens": 8},
    )
    file_cfg = training_config(
        root / "file",
        tiny_model,
        data,
        steps=2,
        evaluation={"prompts": PROMPTS[:1], "dataset": f"file://{held_out}"},
    )
    doc = json.loads(file_cfg.read_text(encoding="utf-8"))
    doc["runtime"]["evalDatasetPath"] = str(held_out)
    file_cfg.write_text(json.dumps(doc), encoding="utf-8")
    configs = {"split": split, "file": file_cfg}
    procs = {name: start_trainer(cfg) for name, cfg in configs.items()}
    out: dict[str, Any] = {}
    for name, proc in procs.items():
        work = configs[name].parent
        assert wait(proc, work) == 0, trainer_log(work)[-5000:]
        out[name], out[f"{name}_dir"] = result_of(work), work
    return out


def test_result_has_loss_perplexity_and_samples(runs: dict[str, Any]) -> None:
    res = runs["split"]
    ev = res.evaluation
    assert ev is not None and ev.loss is not None and ev.perplexity is not None
    assert ev.loss == res.metrics.eval_loss  # the eval split's score is the final eval loss
    assert ev.perplexity == pytest.approx(math.exp(ev.loss))
    assert ev.examples == 8 and ev.tokens > 0 and "eval split 0.1" in ev.dataset
    assert [s.prompt[:20] for s in ev.samples] == [p[:20] for p in PROMPTS]
    assert all(len(s.prompt) <= 101 and isinstance(s.completion, str) for s in ev.samples)
    # A barely trained tiny model may stop at once for one prompt (greedy EOS).
    assert any(s.completion.strip() for s in ev.samples), ev.samples
    text = (runs["split_dir"] / "termination-log").read_text(encoding="utf-8")
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT


def test_a_held_out_file_is_scored_when_given(runs: dict[str, Any]) -> None:
    ev = runs["file"].evaluation
    assert ev is not None and ev.loss is not None and ev.loss > 0
    assert ev.examples == 12 and ev.dataset.endswith("held-out.jsonl")
    assert ev.loss != runs["file"].metrics.eval_loss


def test_every_artifact_has_the_card_section_and_eval_json_under_its_digest(
    runs: dict[str, Any],
) -> None:
    res = runs["split"]
    assert {str(a.kind) for a in res.artifacts} == {"adapter", "merged"}
    for art in res.artifacts:
        folder = Path(art.path)
        card = (folder / "README.md").read_text(encoding="utf-8")
        assert "## Evaluation" in card and "| perplexity |" in card
        assert "**Prompt:** What sound does a cat make?" in card
        report = read_document(EvalResult, folder / EVAL_RESULT_FILE)
        assert report.loss == res.evaluation.loss and len(report.samples) == 2
        assert report.samples[1].prompt == PROMPTS[1]  # full prompt, unlike the result
        assert report.model_version == "split"
        assert folder_digest(folder) == (art.digest, art.size_bytes)
