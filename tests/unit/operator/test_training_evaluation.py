"""FineTuneJob spec.evaluation: the API, the trainer's config, the result, the new version."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from model_garden.api.contracts import (
    RESULT_SAMPLE_CHARS,
    TERMINATION_MESSAGE_LIMIT,
    EvaluationSample,
    TrainingConfig,
    TrainingEvaluation,
    TrainingResult,
)
from model_garden.api.finetunejob import FineTuneJobSpec
from model_garden.api.labels import ANNOTATION_EVALUATION
from model_garden.api.modelversion import ModelVersionStatus
from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob
from model_garden.operator.modelversion.plan import ModelVersionWorld, plan_modelversion

from .factories import NOW, SETTINGS, ftj, job, mv, mvt, pod, result

RUNNING = {
    "conditions": [{"type": "Running", "status": "True", "reason": "Training"}],
    "jobName": "tune-train",
    "observedGeneration": 1,
}
EVALUATION = {
    "dataset": "pvc://data/chat.jsonl (eval split 0.05)",
    "loss": 1.25,
    "perplexity": 3.4903,
    "examples": 5,
    "tokens": 120,
    "evaluatedAt": "2026-11-27T12:00:00Z",
    "samples": [{"prompt": "Hi", "completion": "Hello!"}],
}


def _spec(**evaluation: Any) -> dict[str, Any]:
    return {**ftj()["spec"], "evaluation": evaluation}


@pytest.mark.parametrize(
    ("evaluation", "field"),
    [
        ({"prompts": ["x" * 2001]}, "evaluation.prompts.0"),
        ({"prompts": ["p"] * 17}, "evaluation.prompts"),
        ({"prompts": [""]}, "evaluation.prompts.0"),
        ({"maxNewTokens": 0}, "evaluation.maxNewTokens"),
        ({"maxNewTokens": 513}, "evaluation.maxNewTokens"),
        ({"dataset": "/not/a/uri.jsonl"}, "evaluation.dataset"),
        ({"prompt": ["typo"]}, "evaluation.prompt"),
    ],
)
def test_bad_evaluation_settings_name_the_field(evaluation: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FineTuneJobSpec.model_validate(_spec(**evaluation))
    locs = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert field in locs


def test_evaluation_defaults() -> None:
    spec = FineTuneJobSpec.model_validate(_spec(prompts=["Hi"]))
    assert spec.evaluation is not None
    assert spec.evaluation.max_new_tokens == 32 and spec.evaluation.dataset is None
    assert FineTuneJobSpec.model_validate(ftj()["spec"]).evaluation is None


def _config(body: dict[str, Any]) -> TrainingConfig:
    plan = plan_finetunejob(body, FineTuneJobWorld(model_versions=[mvt()]), SETTINGS, NOW)
    cm = plan.create[0]
    return TrainingConfig.model_validate_json(cm["data"]["training-config.json"])


def test_training_config_carries_the_evaluation_and_mounts_its_dataset() -> None:
    body = ftj(evaluation={"prompts": ["Hi"], "maxNewTokens": 8, "dataset": "pvc://held/out.jsonl"})
    config = _config(body)
    assert config.spec.evaluation is not None
    assert config.spec.evaluation.prompts == ["Hi"] and config.spec.evaluation.max_new_tokens == 8
    assert config.runtime.eval_dataset_path == "/mnt/model-garden/held/out.jsonl"
    plan = plan_finetunejob(body, FineTuneJobWorld(model_versions=[mvt()]), SETTINGS, NOW)
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in plan.create[1]["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert "held" in claims


def test_without_a_dataset_the_eval_split_is_scored() -> None:
    config = _config(ftj(evaluation={"prompts": ["Hi"]}))
    assert config.runtime.eval_dataset_path is None
    assert _config(ftj()).spec.evaluation is None


def _finished(res: TrainingResult) -> dict[str, Any]:
    world = FineTuneJobWorld(
        job=job(finished="Complete"),
        pods=[pod("Succeeded", exit_code=0, message=res.to_termination_message())],
    )
    plan = plan_finetunejob(ftj(status=RUNNING), world, SETTINGS, NOW)
    (created,) = plan.create
    return created


def test_the_new_version_carries_the_results_evaluation() -> None:
    created = _finished(result(evaluation=EVALUATION))
    ev = created["spec"]["evaluation"]
    assert ev["loss"] == "1.25" and ev["perplexity"] == "3.4903"  # spec has no floats
    assert ev["examples"] == 5 and ev["tokens"] == 120
    assert ev["dataset"] == "pvc://data/chat.jsonl (eval split 0.05)"
    assert ev["report"] == "pvc://artifacts/team/chat/v1/adapter/eval.json"
    assert "samples" not in ev  # the samples stay in eval.json


def test_no_evaluation_or_nothing_scored_leaves_the_version_without_one() -> None:
    assert "evaluation" not in _finished(result())["spec"]
    unscored = {**EVALUATION, "loss": None, "perplexity": None}
    assert "evaluation" not in _finished(result(evaluation=unscored))["spec"]


def _version_with(spec_ev: dict[str, Any], **status: Any) -> dict[str, Any]:
    body = mv(ready=False, status=status or None)
    body["spec"]["evaluation"] = spec_ev
    return body


def test_the_versions_reconciler_makes_it_the_first_status_evaluation() -> None:
    spec_ev = _finished(result(evaluation=EVALUATION))["spec"]["evaluation"]
    plan = plan_modelversion(_version_with(spec_ev), ModelVersionWorld(), SETTINGS, NOW)
    assert plan.status
    status_ev = plan.status["evaluation"]
    assert status_ev["loss"] == 1.25 and status_ev["perplexity"] == 3.4903
    assert status_ev["examples"] == 5 and status_ev["tokens"] == 120
    assert status_ev["evaluatedAt"] == "2026-11-27T12:00:00Z"
    assert status_ev["report"] == spec_ev["report"] and status_ev["energyKwh"] == 0.0
    assert ModelVersionStatus.model_validate({"evaluation": status_ev}).evaluation


def test_a_later_mg_eval_written_as_the_annotation_replaces_it() -> None:
    """Users may write metadata, not status: `mg eval` writes the annotation, the reconciler
    makes it status.evaluation and keeps it; an annotation that is no Evaluation is ignored."""
    spec_ev = _finished(result(evaluation=EVALUATION))["spec"]["evaluation"]
    first = plan_modelversion(_version_with(spec_ev), ModelVersionWorld(), SETTINGS, NOW).status
    assert first
    later = {**first["evaluation"], "loss": 0.5, "perplexity": 1.6487, "energyKwh": 0.002}
    body = _version_with(spec_ev, evaluation=first["evaluation"])
    body["metadata"]["annotations"] = {ANNOTATION_EVALUATION: json.dumps(later)}
    plan = plan_modelversion(body, ModelVersionWorld(), SETTINGS, NOW)
    assert plan.status and plan.status["evaluation"]["loss"] == 0.5
    assert plan.status["evaluation"]["energyKwh"] == 0.002
    settled = _version_with(spec_ev, evaluation=plan.status["evaluation"])
    settled["metadata"]["annotations"] = body["metadata"]["annotations"]
    again = plan_modelversion(settled, ModelVersionWorld(), SETTINGS, NOW)
    assert not again.status or "evaluation" not in again.status, "level-based: no change"
    settled["metadata"]["annotations"] = {ANNOTATION_EVALUATION: '{"loss": -1}'}
    ignored = plan_modelversion(settled, ModelVersionWorld(), SETTINGS, NOW)
    assert ignored.status and ignored.status["evaluation"]["loss"] == 1.25, "back to spec's"


def test_samples_are_shortened_and_dropped_to_fit_the_termination_message() -> None:
    long = "word " * 1000
    ev = TrainingEvaluation(
        dataset="d",
        loss=1.0,
        perplexity=2.7,
        samples=[EvaluationSample(prompt=long, completion=long) for _ in range(16)],
    ).shortened()
    assert all(len(s.prompt) <= RESULT_SAMPLE_CHARS + 1 for s in ev.samples)
    res = result(evaluation=ev.to_wire(), message="m" * 1500)
    text = res.to_termination_message()
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    back = TrainingResult.model_validate_json(text)
    assert back.evaluation is not None and back.evaluation.loss == 1.0
    assert 0 < len(back.evaluation.samples) < 16
