"""The API models: samples parse, defaults fill in, invalid input names its field, contracts round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from harness.invalid_cases import CASES, FTJ, IDEP, MV, Case
from model_garden.api import (
    FineTuneJob,
    InferenceDeployment,
    ModelVersion,
    ServingCarbon,
    ServingConfig,
    TrainingConfig,
    TrainingProgress,
    TrainingResult,
    set_condition,
)
from model_garden.api.common import Condition, describe_errors
from model_garden.api.contracts import (
    TERMINATION_MESSAGE_LIMIT,
    ArtifactFile,
    Identity,
    ServedArtifact,
    TrainingRuntime,
    read_document,
    write_document,
)

MODELS = {
    "FineTuneJob": FineTuneJob,
    "ModelVersion": ModelVersion,
    "InferenceDeployment": InferenceDeployment,
}


def parse(body: dict) -> object:
    return MODELS[body["kind"]].model_validate(body)


def test_minimal_finetunejob_gets_documented_defaults() -> None:
    job = FineTuneJob.model_validate(
        {
            "metadata": {"name": "j"},
            "spec": {"baseModel": {"uri": "file:///m"}, "dataset": {"uri": "file:///d.jsonl"}},
        }
    )
    spec = job.spec
    assert (spec.method.type, spec.method.lora.rank, spec.backend) == ("lora", 16, "auto")
    assert spec.hyperparameters.learning_rate == "2e-4"
    assert spec.dataset.format == "auto" and spec.dataset.packing is True
    assert job.output_model == "j"


@pytest.mark.parametrize("body", [FTJ, MV, IDEP], ids=lambda b: b["kind"])
def test_chain_samples_parse(body: dict) -> None:
    assert parse(body).to_wire()["spec"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_resource_is_refused_naming_its_field(case: Case) -> None:
    with pytest.raises(ValidationError) as err:
        parse(case.body)
    lines = describe_errors(err.value)
    assert any(line.startswith(case.field) for line in lines), lines


def test_unknown_field_is_refused_by_name() -> None:
    body = {**FTJ, "spec": {**FTJ["spec"], "learningRate": "1e-4"}}
    with pytest.raises(ValidationError) as err:
        FineTuneJob.model_validate(body)
    assert any(line.startswith("spec.learningRate") for line in describe_errors(err.value))


def test_stage_none_cannot_be_followed() -> None:
    with pytest.raises(ValidationError, match="staging or production"):
        InferenceDeployment.model_validate({**IDEP, "spec": {**IDEP["spec"], "stage": "none"}})


def test_condition_time_moves_only_when_status_changes() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    conds = set_condition([], "Running", "True", "Started", "step 1", now=t0)
    later = set_condition(
        conds, "Running", "True", "Training", "step 50", now=t0 + timedelta(minutes=5)
    )
    assert later[0].last_transition_time == t0 and later[0].message == "step 50"
    flipped = set_condition(later, "Running", "False", "Done", now=t0 + timedelta(minutes=9))
    assert flipped[0].last_transition_time == t0 + timedelta(minutes=9)
    assert conds[0].message == "step 1", "the input list must not be mutated"


def test_set_condition_keeps_other_types_and_order() -> None:
    conds = [Condition(type="Ready", status="True"), Condition(type="Progressing", status="True")]
    out = set_condition(conds, "Progressing", "False", "Done")
    assert [c.type for c in out] == ["Ready", "Progressing"]
    assert out[0] is conds[0]


def training_config() -> TrainingConfig:
    job = FineTuneJob.model_validate(FTJ)
    return TrainingConfig(
        job=Identity(name="support-bot-qlora", namespace="ml", uid="u-1"),
        spec=job.spec,
        runtime=TrainingRuntime(
            base_model="Qwen/Qwen2.5-0.5B-Instruct",
            dataset_path="/data/d.jsonl",
            output_dir="/artifacts/ml/support-bot/v1",
            checkpoint_dir="/artifacts/ml/jobs/support-bot-qlora/checkpoints",
        ),
        model_version=1,
    )


def serving_config() -> ServingConfig:
    idep = InferenceDeployment.model_validate(IDEP)
    return ServingConfig(
        deployment=Identity(name="support-bot", namespace="ml"),
        spec=idep.spec,
        model=ServedArtifact(
            name="support-bot",
            path="/artifacts/ml/support-bot/v1/merged",
            model_version="support-bot-v1",
        ),
        adapters=[ServedArtifact(name="tone", path="/artifacts/ml/tone/v2/adapter")],
    )


ROUND_TRIP = [
    training_config(),
    TrainingResult(
        outcome="Succeeded",
        backend="transformers",
        artifacts=[
            ArtifactFile(kind="adapter", path="/a", size_bytes=10, digest="sha256:" + "0" * 64)
        ],
    ),
    TrainingProgress(step=3, total_steps=10, loss=1.5, energy_kwh=0.001),
    serving_config(),
    ServingCarbon(energy_joules=12.5, prompt_tokens=10, generation_tokens=20, method="estimated"),
]


@pytest.mark.parametrize("doc", ROUND_TRIP, ids=lambda d: type(d).__name__)
def test_contract_round_trips_through_json(doc, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "doc.json"
    write_document(doc, path)
    again = read_document(type(doc), path)
    assert again == doc
    assert '"totalSteps"' in path.read_text() or type(doc) is not TrainingProgress


def test_config_documents_carry_no_secret_values() -> None:
    text = training_config().model_dump_json(by_alias=True)
    assert "HF_TOKEN" in text  # the env var's name travels …
    assert "replace-me" not in text  # … never a secret's value


def test_training_result_stays_under_the_termination_message_limit() -> None:
    result = TrainingResult(
        outcome="Failed",
        reason="DatasetError",
        message="x" * 1500,
        artifacts=[
            ArtifactFile(
                kind=k,
                path="/p" * 100,
                uri="pvc://c" + "/p" * 100,
                size_bytes=1,
                digest="sha256:" + "f" * 64,
            )
            for k in ("adapter", "merged")
        ],
    )
    text = result.to_termination_message()
    assert len(text.encode()) < TERMINATION_MESSAGE_LIMIT
    assert TrainingResult.model_validate_json(text).reason == "DatasetError"


def test_write_document_never_leaves_a_half_written_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "result.json"
    write_document(TrainingProgress(step=1), target)
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
