"""``GET /api/v1/carbon/recommendations`` over a filled local store: the rules' advice with its
savings (camelCase, biggest first), candidate regions, the trainer's history, filters, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from model_garden.local.store import LocalStore
from model_garden.readapi import history

from .fill import ftj, idep, idep_status, job_status, put

URL = "/api/v1/carbon/recommendations"


@pytest.fixture
def advised(store: LocalStore) -> LocalStore:
    """Beside fill's objects: ``big``, a full fine-tune of an 8B model (2 kWh, 0.5 kg, 400 steps)
    whose eval loss flattened at step 200 (stopped at 300); ``idle``, a deployment idle for 75%
    of its 2 kWh (0.3 kg idle)."""
    body = ftj("big", model="big")
    body["spec"]["method"] = {"type": "full"}
    body["spec"]["baseModel"] = {"hub": {"id": "meta-llama/Llama-3.1-8B"}}
    status = job_status("Succeeded", loss=0.8, kg=0.5, kwh=2.0, version="big-v1")
    status["progress"]["step"] = 400
    status["carbon"]["gridIntensityGPerKwh"] = 250.0
    job = put(store, body, status)
    uri = history.job_output_uri(job, None)
    assert uri is not None
    folder = store.local_path(uri)
    folder.mkdir(parents=True, exist_ok=True)
    evals = [(100, 2.0), (200, 1.5), (250, 1.499), (300, 1.498), (400, 1.497)]
    lines = "".join(json.dumps({"step": s, "evalLoss": v}) + "\n" for s, v in evals)
    (folder / history.JOB_HISTORY).write_text(lines)
    served = idep_status("pets-v1", kg=0.4, kwh=2.0, tokens=10, measured=True)
    served["carbon"].update(idleEnergyKwh=1.5, idleEmissionsKg=0.3, gridIntensityGPerKwh=200.0)
    put(store, idep("idle", "pets-v1"), served)
    return store


def _found(reply: dict[str, Any]) -> dict[tuple[str, str], float]:
    return {(r["rule"], r["target"]): r["savingKg"] for r in reply["items"]}


def test_recommendations_with_savings_biggest_first(
    advised: LocalStore, client: TestClient
) -> None:
    reply = client.get(URL)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert _found(doc) == {
        ("idle-deployment", "idle"): 0.3,
        ("parameter-efficient", "big"): 0.5 / 3,
        ("early-stopping", "big"): 0.125,  # 100 of 400 steps after the plateau: 0.5 x 100 / 400
    }
    savings = [r["savingKg"] for r in doc["items"]]
    assert savings == sorted(savings, reverse=True)
    assert doc["totalSavingKg"] == 0.3 + 0.5 / 3 + 0.125
    first = doc["items"][0]
    assert first["targetKind"] == "InferenceDeployment" and first["namespace"] == "default"
    assert first["confidence"] == "high" and first["assumptions"]
    reasons = {(u["rule"], u["reason"]) for u in doc["unknown"]}
    assert ("lower-intensity-region", "no candidate regions") in reasons
    assert ("lower-intensity-window", "no intensity forecast") in reasons


def test_candidate_regions(advised: LocalStore, client: TestClient) -> None:
    doc = client.get(URL, params=[("region", "SWE=10"), ("region", "FRA")]).json()
    found = _found(doc)
    assert found[("lower-intensity-region", "big")] == 2.0 * (250.0 - 10.0) / 1000.0
    assert found[("lower-intensity-region", "idle")] == 2.0 * (200.0 - 10.0) / 1000.0
    # fill's pets-b recorded 0.003 kg for 0.05 kWh (no intensity): 60 g/kWh, from its figures
    pets_b = 0.05 * (0.003 * 1000.0 / 0.05 - 10.0) / 1000.0
    assert found[("lower-intensity-region", "pets-b")] == pets_b
    assert not [u for u in doc["unknown"] if u["rule"] == "lower-intensity-region"]


def test_filters_by_target_and_namespace(advised: LocalStore, client: TestClient) -> None:
    one = client.get(URL, params={"target": "FineTuneJob/big"}).json()
    assert {r["target"] for r in one["items"]} == {"big"}
    assert one["totalSavingKg"] == 0.5 / 3 + 0.125
    assert {u["target"] for u in one["unknown"]} <= {"big", ""}
    assert client.get(URL, params={"namespace": "elsewhere"}).json()["items"] == []
    assert len(client.get(URL, params={"namespace": "default"}).json()["items"]) == 3


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"target": "pod/x"}, "target"),
        ({"target": "big"}, "target"),
        ({"region": "SWE=x"}, "region"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    client: TestClient, params: dict[str, str], names: str
) -> None:
    reply = client.get(URL, params=params)
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith(f"{names}:")


def test_documented_with_its_response_model(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    ok = doc["paths"][URL]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/RecommendationList")
    item = doc["components"]["schemas"]["RecommendationItem"]["properties"]
    assert {"rule", "targetKind", "target", "savingKg", "assumptions", "confidence"} <= set(item)
