"""Artifact digests, model card metadata, results under 4 KB, backend choice, carbon labels."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from model_garden.api.common import CarbonMethod, CarbonReport
from model_garden.api.contracts import (
    TERMINATION_MESSAGE_LIMIT,
    ArtifactKind,
    EvaluationSample,
    TrainingEvaluation,
    TrainingMetrics,
    TrainingResult,
    read_document,
)
from model_garden.api.digest import manifest
from model_garden.carbon.tracker import EnergySplit, build_report, component_methods
from model_garden.operator.verify import digest_directory
from model_garden.training.backends import BackendUnavailable, select_backend
from model_garden.training.outputs import (
    RESULT_FILE,
    artifact,
    failure,
    folder_digest,
    model_card,
    write_result,
)


def test_digest_is_sha256_of_sorted_manifest(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(b"a")
    expected = f"{hashlib.sha256(b'b').hexdigest()}  b.txt\n{hashlib.sha256(b'a').hexdigest()}  sub/a.bin\n"
    assert manifest(tmp_path) == expected
    digest, size = folder_digest(tmp_path)
    assert digest == "sha256:" + hashlib.sha256(expected.encode()).hexdigest() and size == 2
    assert digest_directory(tmp_path)[1] == digest, (
        "the operator checks the digest the trainer reports"
    )
    (tmp_path / "b.txt").write_text("c")
    assert folder_digest(tmp_path)[0] != digest
    art = artifact(ArtifactKind.ADAPTER, tmp_path / "sub", "pvc://claim/ns/m/v1", tmp_path)
    assert art.uri == "pvc://claim/ns/m/v1/sub" and art.size_bytes == 1


def test_model_card_has_co2_metadata() -> None:
    carbon = build_report(EnergySplit(0.001, 0.0, 0.0005), "FRA", None, component_methods([]))
    card = model_card(
        "chat",
        "/models/base",
        ArtifactKind.ADAPTER,
        "lora",
        "transformers",
        "file:///d.jsonl",
        TrainingMetrics(eval_loss=1.0, steps=3),
        carbon,
        "CPU (2 threads)",
    )
    meta = yaml.safe_load(card.split("---\n")[1])
    co2 = meta["co2_eq_emissions"]
    assert co2["emissions"] == pytest.approx(carbon.emissions_kg * 1000)
    assert co2["source"] == "CodeCarbon (estimated)" and co2["training_type"] == "fine-tuning"
    assert co2["geographical_location"] == "FRA" and co2["hardware_used"] == "CPU (2 threads)"
    assert meta["base_model"] == "/models/base" and "| eval_loss | 1.0 |" in card


def test_model_card_carries_the_runs_exact_figure_even_a_tiny_one() -> None:
    """Issue 8 item 1: a short run's card said 0 g (rounded to 6 decimals); it must be the
    TrainingResult's figure itself."""
    carbon = build_report(EnergySplit(2e-9, 0.0, 3e-9), "FRA", None, component_methods([]))
    card = model_card(
        "chat",
        "/models/base",
        ArtifactKind.MERGED,
        "lora",
        "transformers",
        "file:///d.jsonl",
        TrainingMetrics(steps=1),
        carbon,
        "CPU (1 threads)",
    )
    grams = yaml.safe_load(card.split("---\n")[1])["co2_eq_emissions"]["emissions"]
    assert grams == carbon.emissions_kg * 1000.0 > 0


def test_failure_result_fits_termination_message(tmp_path: Path) -> None:
    result = failure("DatasetError", "d.jsonl, line 7: field 'x': missing " + "y" * 3000)
    term = tmp_path / "termination-log"
    term.touch()
    message = write_result(result, str(term), tmp_path / "out")
    assert len(message.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = TrainingResult.model_validate_json(term.read_text())
    assert parsed.reason == "DatasetError" and "line 7" in parsed.message
    assert read_document(TrainingResult, tmp_path / "out" / RESULT_FILE).outcome == "Failed"
    assert json.loads(message)["outcome"] == "Failed"


def test_backend_selection() -> None:
    assert select_backend("auto", cuda=True, unsloth_installed=True)[0] == "unsloth"
    assert select_backend("auto", cuda=False, unsloth_installed=True)[0] == "transformers"
    assert select_backend("auto", cuda=True, unsloth_installed=False)[0] == "transformers"
    assert select_backend("unsloth", cuda=False, unsloth_installed=True)[0] == "unsloth"
    with pytest.raises(BackendUnavailable, match="not installed"):
        select_backend("unsloth", cuda=True, unsloth_installed=False)


class CPU:
    _mode = "cpu_load"


class RAM:
    pass


class GPU:
    pass


def test_carbon_methods_and_report() -> None:
    estimated = component_methods([CPU(), RAM()])
    assert estimated == {"cpu": CarbonMethod.ESTIMATED, "ram": CarbonMethod.ESTIMATED}
    rapl = CPU()
    rapl._mode = "intel_rapl"
    mixed = component_methods([rapl, GPU(), RAM()])
    assert mixed["cpu"] == mixed["gpu"] == CarbonMethod.MEASURED
    report: CarbonReport = build_report(EnergySplit(1.0, 2.0, 0.5), "FRA", "idf", mixed)
    assert report.energy_kwh == 3.5 and report.method == CarbonMethod.ESTIMATED
    assert report.emissions_kg == pytest.approx(3.5 * report.grid_intensity_g_per_kwh / 1000)
    assert report.region == "idf"


def test_model_card_has_the_evaluation_section() -> None:
    carbon = build_report(EnergySplit(0.001, 0.0, 0.0005), "FRA", None, component_methods([]))
    evaluation = TrainingEvaluation(
        dataset="file:///d.jsonl (eval split 0.2)",
        loss=1.5,
        perplexity=4.4817,
        examples=4,
        tokens=80,
        samples=[EvaluationSample(prompt="Name a cat", completion="Tom ```x```")],
    )
    card = model_card(
        "chat",
        "/models/base",
        ArtifactKind.ADAPTER,
        "lora",
        "transformers",
        "file:///d.jsonl",
        TrainingMetrics(eval_loss=1.5, steps=3),
        carbon,
        "CPU (2 threads)",
        evaluation,
    )
    section = card.split("## Evaluation", 1)[1]
    assert "| loss | 1.5 |" in section and "| perplexity | 4.482 |" in section
    assert "**Prompt:** Name a cat" in section and "Tom" in section
    assert section.count("```") == 2  # a completion cannot close the fence
    assert "## Evaluation" not in model_card(
        "chat",
        "/models/base",
        ArtifactKind.ADAPTER,
        "lora",
        "transformers",
        "file:///d.jsonl",
        TrainingMetrics(eval_loss=1.5, steps=3),
        carbon,
        "CPU (2 threads)",
    )
