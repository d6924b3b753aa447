"""The API models: samples parse, defaults fill in, invalid input names its field, contracts round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from harness.invalid_cases import CASES, DELETE, FTJ, IDEP, MV, Case, edit
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
from model_garden.api.common import CarbonReport, Condition, describe_errors
from model_garden.api.contracts import (
    TERMINATION_MESSAGE_LIMIT,
    ArtifactFile,
    Identity,
    ServedArtifact,
    TrainingRuntime,
    read_document,
    write_document,
)
from model_garden.api.display import format_emissions, planned_total_steps, round_loss
from model_garden.api.finetunejob import TrainingCarbonStatus
from model_garden.api.modelversion import VERSION_MAX, version_name

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


# --- names that always reconcile (issue 8, item 5) -------------------------------------------


def test_longest_admitted_names_still_make_valid_children() -> None:
    """The longest FineTuneJob/model names the schema admits give a valid ModelVersion (a
    63-character label, as label values and child-name prefixes must be) at the largest version."""
    job = FineTuneJob.model_validate(
        {**FTJ, "metadata": {"name": "j" * 50}, "spec": {**FTJ["spec"], "output": {}}}
    )
    name = version_name(job.output_model, VERSION_MAX)
    assert len(name) <= 63
    mv = ModelVersion.model_validate(
        {
            **MV,
            "metadata": {"name": name},
            "spec": {**MV["spec"], "model": job.output_model, "version": VERSION_MAX},
        }
    )
    assert mv.metadata.name == name
    long_job = FineTuneJob.model_validate({**FTJ, "metadata": {"name": "j" * 63}})
    assert len(version_name(long_job.output_model, VERSION_MAX)) <= 63  # output.model is set


def test_a_job_named_like_a_version_with_a_dot_is_refused_before_it_trains() -> None:
    body = {**FTJ, "metadata": {"name": "qwen2.5-lora"}}
    with pytest.raises(ValidationError) as err:
        FineTuneJob.model_validate(body)
    assert any(line.startswith("metadata.name") for line in describe_errors(err.value))


def test_claim_names_are_checked_in_every_uri() -> None:
    for path, value in [
        ("spec.dataset.uri", "pvc://claim_1/d.jsonl"),
        ("spec.baseModel", {"uri": "pvc://Claim/base"}),
        ("spec.output.storage", "pvc://.hidden"),
    ]:
        with pytest.raises(ValidationError) as err:
            FineTuneJob.model_validate(edit(FTJ, path, value))
        assert any(line.startswith(path) for line in describe_errors(err.value)), path
    ok = edit(FTJ, "spec.dataset.uri", "pvc://team.artifacts-2/datasets/d.jsonl")
    assert FineTuneJob.model_validate(ok).spec.dataset.uri.startswith("pvc://team.artifacts-2/")


# --- figures for people (issue 8, item 12) ---------------------------------------------------


@pytest.mark.parametrize(
    ("kg", "shown"),
    [
        (1.853453560257589e-07, "185 µg"),
        (0.0123, "12.3 g"),
        (0.9997, "1 kg"),
        (2.5, "2.5 kg"),
        (5000.0, "5 t"),
        (0.0, "0 g"),
        (1e-13, "<1 µg"),
        (None, None),
    ],
)
def test_emissions_are_shown_in_a_unit_people_read(kg: float | None, shown: str | None) -> None:
    assert format_emissions(kg) == shown


def test_loss_is_rounded_and_total_comes_from_max_steps_until_the_trainer_counts() -> None:
    assert round_loss(5.969635973056826) == 5.97 and round_loss(None) is None
    assert planned_total_steps(30, 0) == 30 and planned_total_steps(30, None) == 30
    assert planned_total_steps(None, 0) is None and planned_total_steps(None, 120) == 120


def test_training_carbon_status_carries_the_display_figure() -> None:
    status = TrainingCarbonStatus.of(CarbonReport(emissions_kg=1.853453560257589e-07))
    assert status.to_wire()["emissions"] == "185 µg"
    assert status.emissions_kg == 1.853453560257589e-07


def test_scheduling_settings_are_checked_with_messages_that_name_the_field() -> None:
    window = {"notBefore": "2026-01-02T00:00:00Z", "notAfter": "2026-01-01T00:00:00Z"}
    with pytest.raises(ValidationError) as err:
        FineTuneJob.model_validate(edit(FTJ, "spec.carbon.schedulingWindow", window))
    (line,) = describe_errors(err.value)
    assert line == "spec.carbon.schedulingWindow: notAfter must be later than notBefore"
    body = edit(
        edit(FTJ, "spec.carbon.maxGridIntensity", 200), "spec.carbon.pauseAboveGridIntensity", 100
    )
    with pytest.raises(ValidationError) as err:
        FineTuneJob.model_validate(body)
    (line,) = describe_errors(err.value)
    assert line.startswith("spec.carbon: pauseAboveGridIntensity must be at least maxGridIntensity")
    window = {"notBefore": "2026-01-01T00:00:00Z", "notAfter": "2026-01-02T00:00:00Z"}
    body = edit(
        edit(FTJ, "spec.carbon.schedulingWindow", window), "spec.carbon.maxGridIntensity", 80
    )
    carbon = FineTuneJob.model_validate(body).spec.carbon
    assert carbon.scheduled and carbon.max_grid_intensity == 80
    assert not FineTuneJob.model_validate(FTJ).spec.carbon.scheduled


# --- serving exposure and carbon status (items 10 and 1) -------------------------------------


def test_dynamic_adapters_need_an_api_key_and_default_off() -> None:
    assert InferenceDeployment.model_validate(IDEP).spec.dynamic_adapters is False
    with pytest.raises(ValidationError, match="dynamicAdapters: true requires spec.apiKeySecret"):
        InferenceDeployment.model_validate(
            edit(edit(IDEP, "spec.dynamicAdapters", True), "spec.apiKeySecret", DELETE)
        )
    assert InferenceDeployment.model_validate(edit(IDEP, "spec.dynamicAdapters", True))


def test_network_policy_defaults_to_the_namespace_and_takes_peers() -> None:
    policy = InferenceDeployment.model_validate(IDEP).spec.network_policy
    assert policy.enabled is True and policy.allow_from == []
    peers = [
        {"namespaceSelector": {"matchLabels": {"team": "web"}}},
        {"podSelector": {"matchLabels": {"app": "gateway"}}},
    ]
    parsed = InferenceDeployment.model_validate(
        edit(IDEP, "spec.networkPolicy", {"allowFrom": peers})
    )
    assert parsed.spec.to_wire()["networkPolicy"]["allowFrom"] == peers
    with pytest.raises(ValidationError) as err:
        InferenceDeployment.model_validate(
            edit(
                IDEP,
                "spec.networkPolicy",
                {"allowFrom": [{"podSelector": {"matchLabels": {"app": "-x"}}}]},
            )
        )
    assert any("spec.networkPolicy.allowFrom" in line for line in describe_errors(err.value))


def test_serving_carbon_status_keeps_baselines_per_pod_and_shares_per_version() -> None:
    carbon = {
        "energyKwh": 3.0,
        "activeEnergyKwh": 1.0,
        "idleEnergyKwh": 2.0,
        "emissionsKg": 0.3,
        "activeEmissionsKg": 0.1,
        "idleEmissionsKg": 0.2,
        "tokens": 1000,
        "gPer1kTokens": 0.01,
        "windowSeconds": 300.0,
        "pods": [{"uid": "p1", "energyJoules": 10.0, "tokens": 5}],
        "byModelVersion": [{"modelVersion": "support-bot-v1", "emissionsKg": 0.3, "tokens": 1000}],
    }
    idep = InferenceDeployment.model_validate({**IDEP, "status": {"carbon": carbon}})
    assert idep.status.carbon is not None and idep.status.carbon.pods[0].uid == "p1"
    twice = {**carbon, "pods": carbon["pods"] * 2}  # type: ignore[operator]
    with pytest.raises(ValidationError, match="uid='p1'"):
        InferenceDeployment.model_validate({**IDEP, "status": {"carbon": twice}})
    share = {
        "deployment": "support-bot",
        "uid": "u1",
        "energyKwh": 1.0,
        "emissionsKg": 0.1,
        "tokens": 9,
    }
    mv = ModelVersion.model_validate({**MV, "status": {"servingByDeployment": [share]}})
    assert mv.status.to_wire()["servingByDeployment"] == [share]
