"""The rules' facts from the objects (as the API server holds them) and from trainer history."""

from __future__ import annotations

from typing import Any

import pytest

from model_garden.carbon.recommend import EvalPoint, eval_points, evaluate, from_objects, key
from model_garden.carbon.recommend.model import EARLY_STOPPING, IDLE_DEPLOYMENT, RIGHT_SIZE_GPUS
from unit.operator.factories import ftj, idep, mv

CARBON = {
    "energyKwh": 2.0,
    "gpuEnergyKwh": 1.5,
    "emissionsKg": 0.5,
    "gridIntensityGPerKwh": 250.0,
    "country": "DEU",
    "method": "measured",
}


def _objects() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    full = ftj(
        "full",
        method={"type": "full"},
        baseModel={"hub": {"id": "meta-llama/Llama-3.1-8B"}},
        status={
            "carbon": CARBON,
            "progress": {"step": 400, "totalSteps": 400},
            "startTime": "2026-11-27T10:00:00Z",
            "completionTime": "2026-11-27T12:00:00Z",
        },
    )
    again = ftj(  # fine-tunes chat-v1 further: its size is the version's base model's
        "again",
        method={"type": "full"},
        baseModel={"modelVersion": {"name": "chat-v1"}},
        status={"carbon": {**CARBON, "region": "eu-west"}, "progress": {"step": 10}},
    )
    pending = ftj("pending", status={})
    version = mv("chat-v1", fmt="adapter", baseModel="Qwen/Qwen2.5-7B")
    bot = idep(
        "bot",
        modelVersion="chat-v1",
        replicas=2,
        resources={"gpus": 1},
        status={
            "replicas": 2,
            "carbon": {
                "energyKwh": 2.0,
                "idleEnergyKwh": 1.5,
                "idleEmissionsKg": 0.3,
                "emissionsKg": 0.4,
                "tokens": 10,
                "region": "DEU",
                "gridIntensityGPerKwh": 200.0,
            },
        },
    )
    quiet = idep("quiet", modelVersion="chat-v1", status={})
    broken = {"kind": "InferenceDeployment", "metadata": {"name": "x"}, "spec": {"replicas": -1}}
    return [full, again, pending], [version], [bot, quiet, broken]


def test_facts_from_objects() -> None:
    jobs, deps, skipped = from_objects(*_objects())
    assert skipped == 1  # the broken deployment
    assert [j.name for j in jobs] == ["full", "again"]  # pending has no carbon yet
    full, again = jobs
    assert (full.method, full.parameters, full.steps, full.gpus) == ("full", 8_000_000_000, 400, 2)
    assert (full.energy_kwh, full.gpu_energy_kwh, full.emissions_kg) == (2.0, 1.5, 0.5)
    assert (full.intensity_g_per_kwh, full.region, full.namespace) == (250.0, "DEU", "team")
    assert full.duration_seconds == 7200.0
    assert full.evals is None and full.gpu_utilisation is None  # not given: not known
    assert (again.base_model, again.parameters, again.region) == (
        "Qwen/Qwen2.5-7B", 7_000_000_000, "eu-west"
    )  # fmt: skip
    assert again.duration_seconds is None
    (bot,) = deps
    assert (bot.name, bot.replicas, bot.gpus, bot.tokens) == ("bot", 2, 2, 10)
    assert (bot.idle_energy_kwh, bot.idle_emissions_kg, bot.intensity_g_per_kwh) == (
        1.5,
        0.3,
        200.0,
    )


def test_inputs_by_key_with_or_without_the_namespace() -> None:
    history = [{"step": 100, "evalLoss": 2.0}, {"step": 200, "evalLoss": 1.995}]
    jobs, deps, _ = from_objects(
        *_objects(),
        histories={key("FineTuneJob", "full", "team"): [*history, {"step": 300, "evalLoss": 1.99}]},
        utilisation={key("InferenceDeployment", "bot"): 0.25, "team/FineTuneJob/full": 0.9},
    )
    assert jobs[0].evals == (EvalPoint(100, 2.0), EvalPoint(200, 1.995), EvalPoint(300, 1.99))
    assert jobs[0].gpu_utilisation == 0.9
    assert deps[0].gpu_utilisation == 0.25
    advice = evaluate(jobs, deps)
    found = {(r.rule, r.target): r.saving_kg for r in advice.recommendations}
    assert found[(EARLY_STOPPING, "full")] == 0.5 * 100 / 400  # flat from step 300
    assert found[(IDLE_DEPLOYMENT, "bot")] == 0.3
    assert found[(RIGHT_SIZE_GPUS, "bot")] == 2.0 * 1 / 2 * 200.0 / 1000.0
    assert (RIGHT_SIZE_GPUS, "full") not in found  # 90% busy


def test_eval_points_from_trainer_history() -> None:
    """Step lines repeat the last eval loss; an evaluation writes a second line for its step."""
    lines = [
        {"step": 1, "loss": 3.0, "evalLoss": None},
        {"step": 2, "loss": 2.9, "evalLoss": None},
        {"step": 2, "loss": 2.9, "evalLoss": 2.5},  # the evaluation after step 2
        {"step": 3, "loss": 2.8, "evalLoss": 2.5},
        {"step": 4, "loss": 2.7, "evalLoss": 2.5},
        {"step": 4, "loss": 2.7, "evalLoss": 2.2},
        {"step": 5, "loss": 2.6, "evalLoss": 2.2},
        {"step": 3, "loss": 2.8, "evalLoss": 2.5},  # a resumed run repeats a step
        {"step": 6, "eval_loss": 2.1},  # the read API's JobPoint, dumped by name
        {"step": "bad"},
        {"loss": 1.0},
    ]
    assert eval_points(lines) == (EvalPoint(2, 2.5), EvalPoint(4, 2.2), EvalPoint(6, 2.1))
    assert eval_points([]) == ()


def test_candidate_regions_given_or_looked_up() -> None:
    from model_garden.carbon.recommend import candidate_regions

    table = {"FRA": 56.0}
    assert candidate_regions(["SWE=41", "FRA", " aws:eu-north-1 =8.5"], table.__getitem__) == {
        "SWE": 41.0, "FRA": 56.0, "aws:eu-north-1": 8.5
    }  # fmt: skip
    for bad in ("SWE=lots", "=3", "SWE=-1", "SWE=nan"):
        with pytest.raises(ValueError, match="CODE"):
            candidate_regions([bad], table.__getitem__)


def test_forecast_points_in_either_shape() -> None:
    from datetime import UTC, datetime

    from model_garden.carbon.recommend import ForecastPoint, forecast_points

    ours = [
        {"time": "2026-11-27T01:00:00Z", "gPerKwh": 2},
        {"time": "2026-11-27T00:00:00Z", "gPerKwh": 1},
    ]
    maps = {"forecast": [{"datetime": "2026-11-27T00:00:00.000Z", "carbonIntensity": 1}]}
    first = ForecastPoint(datetime(2026, 11, 27, tzinfo=UTC), 1.0)
    assert forecast_points(ours)[0] == first and len(forecast_points(ours)) == 2
    assert forecast_points(maps) == [first]
    for bad in ({"forecast": 1}, [{"time": "2026-11-27T00:00:00", "gPerKwh": 1}], [3]):
        with pytest.raises(ValueError):
            forecast_points(bad)
