"""``mg carbon recommend`` on a local store filled with objects as the operator leaves them: the
rules' advice with its savings in every format, the inputs (--region, --forecast,
--gpu-utilisation, the trainer's history), the --target filter and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from model_garden.local.store import LocalStore
from model_garden.readapi import history
from readapi.fill import ftj, idep, idep_status, job_status, put

from .conftest import Env, one_line_error


@pytest.fixture()
def filled(env: Env) -> Env:
    """``big``: a full fine-tune of a 7B model (2 kWh, 0.5 kg, 400 steps, 4 GPUs, eval loss flat
    from step 200: early stopping at 300); ``bot``: a deployment idle for 75% of its 2 kWh (0.3 kg
    idle)."""
    store = LocalStore(env.home)
    body = ftj("big", model="big")
    body["spec"]["method"] = {"type": "full"}
    body["spec"]["baseModel"] = {"hub": {"id": "Qwen/Qwen2.5-7B"}}
    body["spec"]["resources"] = {"gpus": 4}
    status = job_status("Succeeded", loss=0.8, kg=0.5, kwh=2.0, version="big-v1")
    status["progress"]["step"] = 400
    status["carbon"].update(gridIntensityGPerKwh=250.0, gpuEnergyKwh=1.5)
    job = put(store, body, status)
    bot = idep("bot", "big-v1")
    bot["spec"]["replicas"] = 0  # nothing to start: the figures are what its meters left
    served = idep_status("big-v1", kg=0.4, kwh=2.0, tokens=10, measured=True)
    served["carbon"].update(idleEnergyKwh=1.5, idleEmissionsKg=0.3, gridIntensityGPerKwh=200.0)
    put(store, bot, served)
    uri = history.job_output_uri(job, "big-v1")
    assert uri is not None
    folder = store.local_path(uri)
    folder.mkdir(parents=True, exist_ok=True)
    evals = [(100, 2.0), (200, 1.5), (250, 1.499), (300, 1.498), (400, 1.497)]
    lines = [{"step": step, "evalLoss": loss} for step, loss in evals]
    (folder / history.JOB_HISTORY).write_text("".join(json.dumps(x) + "\n" for x in lines))
    return env


def _json(env: Env, *args: str) -> dict[str, Any]:
    result = env.run("carbon", "recommend", *args, "-o", "json")
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _found(doc: dict[str, Any]) -> dict[tuple[str, str], float]:
    return {(r["rule"], r["target"]): r["saving_kg"] for r in doc["recommendations"]}


def test_recommendations_of_a_filled_store(filled: Env) -> None:
    doc = _json(filled)
    assert _found(doc) == {
        ("idle-deployment", "bot"): 0.3,  # the meters' idle emissions
        ("parameter-efficient", "big"): 0.5 / 3,
        ("early-stopping", "big"): 0.125,  # stopped at 300 of 400: 0.5 kg x 100 / 400
    }
    assert [r["rule"] for r in doc["recommendations"]] == [
        "idle-deployment", "parameter-efficient", "early-stopping"
    ]  # fmt: skip
    first = doc["recommendations"][0]
    assert first["target_kind"] == "InferenceDeployment" and first["assumptions"]
    assert first["confidence"] == "high"
    reasons = {(u["rule"], u["reason"]) for u in doc["unknown"]}
    assert ("right-size-gpus", "GPU utilisation not known") in reasons
    assert ("lower-intensity-region", "no candidate regions") in reasons
    assert doc["skipped"] == 0


def test_inputs_regions_forecast_and_utilisation(filled: Env) -> None:
    forecast = filled.home.parent / "forecast.json"
    points = [
        {"datetime": f"2026-11-27T{h:02d}:00:00Z", "carbonIntensity": g}
        for h, g in enumerate([300, 300, 300, 50, 50, 100])
    ]
    forecast.write_text(json.dumps({"forecast": points}))  # Electricity Maps' shape
    doc = _json(
        filled,
        "--region", "SWE=50", "--region", "FRA",
        "--forecast", str(forecast),
        "--gpu-utilisation", "ftj/big=0.2",
    )  # fmt: skip
    found = _found(doc)
    # FRA is the job's own region: SWE is the candidate; the deployment ran in DEU at 200
    assert found[("lower-intensity-region", "big")] == 2.0 * (250.0 - 50.0) / 1000.0
    assert found[("lower-intensity-region", "bot")] == 2.0 * (200.0 - 50.0) / 1000.0
    # the job lasted 30 min: one point; now 300, best 50
    assert found[("lower-intensity-window", "big")] == 2.0 * (300.0 - 50.0) / 1000.0
    assert found[("right-size-gpus", "big")] == 1.5 * 3 / 4 * 250.0 / 1000.0
    assert not [u for u in doc["unknown"] if u["target"] == "big"]


def test_target_filter_table_and_yaml(filled: Env) -> None:
    doc = _json(filled, "--target", "idep/bot")
    assert {r["target"] for r in doc["recommendations"]} == {"bot"}
    assert {u["target"] for u in doc["unknown"]} <= {"bot", ""}
    table = filled.run("carbon", "recommend", "--target", "FineTuneJob/big")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["SAVING", "RULE", "TARGET", "CONFIDENCE", "RECOMMENDATION"]
    assert lines[2].split()[:4] == ["167", "g", "parameter-efficient", "FineTuneJob/big"]
    assert ["125", "g", "early-stopping", "FineTuneJob/big"] in [x.split()[:4] for x in lines]
    assert "not judged: right-size-gpus: GPU utilisation not known" in table.stderr
    as_yaml = yaml.safe_load(filled.run("carbon", "recommend", "-o", "yaml").stdout)
    assert _found(as_yaml) == _found(_json(filled))


def test_nothing_to_recommend(env: Env) -> None:
    result = env.run("carbon", "recommend")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "no recommendation"
    assert _json(env)["recommendations"] == []


@pytest.mark.parametrize(
    ("args", "code", "names"),
    [
        (["--target", "pod/x"], 2, "--target"),
        (["--target", "ftj/missing"], 3, "FineTuneJob missing not found"),
        (["--region", "SWE=lots"], 2, "--region"),
        (["--gpu-utilisation", "ftj/big=1.5"], 2, "--gpu-utilisation"),
        (["--gpu-utilisation", "big=0.5"], 2, "--gpu-utilisation"),
    ],
)
def test_bad_input_is_one_line_naming_it(
    filled: Env, args: list[str], code: int, names: str
) -> None:
    result = filled.run("carbon", "recommend", *args)
    assert result.exit_code == code
    assert names in one_line_error(result)


def test_a_bad_forecast_names_the_point(filled: Env) -> None:
    forecast = filled.home.parent / "forecast.json"
    forecast.write_text(json.dumps([{"time": "2026-11-27T00:00:00Z", "gPerKwh": 1}, {"t": 1}]))
    result = filled.run("carbon", "recommend", "--forecast", str(forecast))
    assert result.exit_code == 2
    assert "forecast point 1" in one_line_error(result)
