"""Every read route over a local store filled with valid resources."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from model_garden.api.labels import ANNOTATION_EVALUATION
from model_garden.local.store import LocalStore
from model_garden.readapi import ReadApiSettings, create_app
from model_garden.readapi.local import LocalSource

V1 = "/api/v1"


def names(reply: dict) -> list[str]:
    return [item["metadata"]["name"] for item in reply["items"]]


def test_info_says_local_mode_and_token_writes(client: TestClient) -> None:
    info = client.get(f"{V1}/info").json()
    assert info["mode"] == "local" and info["writes"] == "token"
    assert info["namespaces"] == ["default"] and info["prometheus"] is False


def test_lists_sorted_with_totals(client: TestClient) -> None:
    jobs = client.get(f"{V1}/finetunejobs").json()
    assert names(jobs) == ["chat-run", "pets-a", "pets-b"]
    assert jobs["total"] == 3 and jobs["continue"] is None
    assert jobs["items"][1]["status"]["carbon"]["emissionsKg"] == 0.002
    assert names(client.get(f"{V1}/modelversions").json()) == ["pets-v1", "pets-v2"]
    assert names(client.get(f"{V1}/inferencedeployments").json()) == ["pets"]


def test_filters(client: TestClient) -> None:
    assert names(client.get(f"{V1}/finetunejobs?model=pets").json()) == ["pets-a", "pets-b"]
    assert names(client.get(f"{V1}/finetunejobs?experiment=lr-sweep").json()) == [
        "pets-a",
        "pets-b",
    ]
    assert names(client.get(f"{V1}/finetunejobs?condition=Running").json()) == ["chat-run"]
    assert names(client.get(f"{V1}/finetunejobs?namespace=other").json()) == []
    assert names(client.get(f"{V1}/modelversions?stage=production").json()) == ["pets-v1"]
    assert names(client.get(f"{V1}/inferencedeployments?model=pets").json()) == ["pets"]
    assert names(client.get(f"{V1}/inferencedeployments?condition=Ready").json()) == ["pets"]


def test_pagination_with_continue_token(client: TestClient) -> None:
    first = client.get(f"{V1}/finetunejobs?limit=2").json()
    assert names(first) == ["chat-run", "pets-a"] and first["total"] == 3
    second = client.get(
        f"{V1}/finetunejobs", params={"limit": 2, "continue": first["continue"]}
    ).json()
    assert names(second) == ["pets-b"] and second["continue"] is None
    assert client.get(f"{V1}/finetunejobs?continue=%%%garbage").status_code == 400
    assert client.get(f"{V1}/finetunejobs?limit=0").status_code == 422


def test_get_and_not_found(client: TestClient) -> None:
    job = client.get(f"{V1}/finetunejobs/default/pets-a").json()
    assert job["kind"] == "FineTuneJob" and job["status"]["modelVersion"] == "pets-v1"
    assert client.get(f"{V1}/modelversions/default/pets-v2").json()["spec"]["version"] == 2
    idep = client.get(f"{V1}/inferencedeployments/default/pets").json()
    assert idep["status"]["endpoint"] == "http://127.0.0.1:9/v1"
    missing = client.get(f"{V1}/finetunejobs/default/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert client.get(f"{V1}/finetunejobs/other/pets-a").status_code == 404


def test_events(client: TestClient, store: LocalStore) -> None:
    store.add_event("FineTuneJob", "pets-a", "Normal", "Started", "trainer pod started")
    store.add_event("FineTuneJob", "pets-b", "Normal", "Started", "not this one")
    events = client.get(f"{V1}/finetunejobs/default/pets-a/events").json()["items"]
    assert [(e["reason"], e["message"]) for e in events] == [("Started", "trainer pod started")]


def test_lineage_and_card(client: TestClient) -> None:
    lineage = client.get(f"{V1}/modelversions/default/pets-v1/lineage").json()
    assert lineage["job"]["metadata"]["name"] == "pets-a"
    assert lineage["version"]["metadata"]["name"] == "pets-v1"
    assert [d["metadata"]["name"] for d in lineage["deployments"]] == ["pets"]
    other = client.get(f"{V1}/modelversions/default/pets-v2/lineage").json()
    assert other["deployments"] == [] and other["job"]["metadata"]["name"] == "pets-b"
    card = client.get(f"{V1}/modelversions/default/pets-v1/card").json()["markdown"]
    assert card.startswith("# pets-v1") and "pets-a" in card


def test_card_file_written_by_the_trainer_wins(client: TestClient, store: LocalStore) -> None:
    folder = store.claim_dir("model-garden-artifacts") / "default/pets/v1/adapter"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("# the real card\n")
    assert client.get(f"{V1}/modelversions/default/pets-v1/card").json() == {
        "markdown": "# the real card\n"
    }


def test_overview(client: TestClient) -> None:
    ov = client.get(f"{V1}/overview").json()
    assert (ov["runningJobs"], ov["servingDeployments"], ov["versions"]) == (1, 1, 2)
    assert {j["metadata"]["name"] for j in ov["recentJobs"]} == {"chat-run", "pets-a", "pets-b"}
    regions = {r["region"]: r for r in ov["byRegion"]}
    assert set(regions) == {"FRA", "USA", "DEU"} and regions["DEU"]["emissionsKg"] == 0.004


def test_experiments(client: TestClient) -> None:
    items = client.get(f"{V1}/experiments").json()["items"]
    assert [e["name"] for e in items] == ["lr-sweep"]
    runs = {r["job"]: r for r in items[0]["runs"]}
    assert set(runs) == {"pets-a", "pets-b"}
    assert runs["pets-b"]["hyperparameters"]["learningRate"] == 1e-4
    assert runs["pets-b"]["hyperparameters"]["loraR"] == 8
    assert runs["pets-a"]["durationSeconds"] == 1800.0 and runs["pets-a"]["emissionsKg"] == 0.002
    assert runs["pets-a"]["status"] == "Succeeded" and runs["pets-a"]["finalLoss"] == 0.9


def test_carbon_summary_by_each_dimension(client: TestClient) -> None:
    def rows(by: str) -> dict:
        reply = client.get(f"{V1}/carbon/summary?by={by}").json()
        assert reply["by"] == by
        return {r["key"]: r for r in reply["rows"]}

    by_kind = rows("kind")
    assert by_kind["training"]["operations"] == 3
    assert abs(by_kind["training"]["emissionsKg"] - 0.006) < 1e-12
    assert by_kind["serving"]["emissionsKg"] == 0.004 and by_kind["serving"]["measuredShare"] == 1.0
    assert by_kind["training"]["measuredShare"] == 0.0
    assert set(rows("model")) == {"pets", "chat"}
    assert set(rows("version")) == {"pets-v1", "pets-v2", None}
    assert set(rows("experiment")) == {"lr-sweep", None}
    assert set(rows("namespace")) == {"default"}
    assert set(rows("region")) == {"FRA", "USA", "DEU"}
    assert set(rows("method")) == {"estimated", "measured"}
    assert client.get(f"{V1}/carbon/summary?by=colour").status_code == 422


def test_carbon_per_model_and_timeline(client: TestClient) -> None:
    per = {m["model"]: m for m in client.get(f"{V1}/carbon/models").json()["items"]}
    pets = per["pets"]
    assert abs(pets["trainingKg"] - 0.005) < 1e-12 and pets["servingKg"] == 0.004
    assert pets["tokens"] == 8000
    assert abs(pets["gramsPer1kTokens"] - (0.009 * 1e6 / 8000)) < 1e-9
    assert per["chat"]["gramsPer1kTokens"] is None
    points = client.get(f"{V1}/carbon/timeline?days=7").json()["points"]
    assert len(points) == 7 and points[-1]["day"] > points[0]["day"]
    total = sum(p["training"] + p["serving"] for p in points)
    assert total <= 0.010 + 1e-12


def test_job_history_from_the_trainer_file(client: TestClient, store: LocalStore) -> None:
    folder = store.claim_dir("model-garden-artifacts") / "default/pets/v1"
    folder.mkdir(parents=True)
    lines = [
        {
            "time": "2026-11-27T10:00:01Z",
            "step": 1,
            "epoch": 0.1,
            "loss": 2.0,
            "learningRate": 1e-4,
        },
        {"time": "2026-11-27T10:00:02Z", "step": 2, "epoch": 0.2, "loss": 1.5, "evalLoss": 1.7},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"torn'
    (folder / "history.jsonl").write_text(text)
    reply = client.get(f"{V1}/finetunejobs/default/pets-a/history").json()
    assert reply["source"] == "history"
    assert [(p["step"], p["loss"], p["evalLoss"]) for p in reply["points"]] == [
        (1, 2.0, None),
        (2, 1.5, 1.7),
    ]
    empty = client.get(f"{V1}/finetunejobs/default/chat-run/history").json()
    assert empty == {"points": [], "source": "history"}


def test_deployment_history_from_the_meter_file(
    client: TestClient, store: LocalStore, source: LocalSource
) -> None:
    idep = store.get("InferenceDeployment", "pets")
    assert idep is not None
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "pets-server-abc",
            "labels": {"modelgarden.dev/inference-deployment-uid": idep["metadata"]["uid"]},
        },
        "spec": {"containers": []},
    }
    store.create(pod)
    folder = store.scratch_dir("pets-server-abc") / "tmp" / "model-garden"
    folder.mkdir(parents=True)
    try:
        point = {
            "time": "2026-11-27T11:00:00Z",
            "energyKwh": 0.01,
            "emissionsKg": 0.002,
            "tokens": 500,
        }
        (folder / "meter-default-pets.history.jsonl").write_text(json.dumps(point) + "\n")
        reply = client.get(f"{V1}/inferencedeployments/default/pets/history").json()
        assert reply["source"] == "history"
        assert [(p["tokens"], p["gramsPer1kTokens"]) for p in reply["points"]] == [(500, None)]
    finally:
        store.delete("Pod", "pets-server-abc")


def test_openapi_documents_every_route_with_a_response_model(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/api/v1/finetunejobs",
        "/api/v1/modelversions/{namespace}/{name}/lineage",
        "/api/v1/inferencedeployments/{namespace}/{name}/scale",
        "/api/v1/datasets/{namespace}",
        "/api/v1/carbon/summary",
        "/api/v1/experiments",
        "/api/v1/overview",
        "/api/v1/stream",
    ):
        assert path in paths, path
    ok = paths["/api/v1/finetunejobs/{namespace}/{name}"]["get"]["responses"]["200"]
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/FineTuneJob")


def test_root_says_the_dashboard_was_not_built(client: TestClient) -> None:
    reply = client.get("/")
    assert reply.status_code == 200 and "not built" in reply.text


def test_summaries_follow_a_change_of_the_store(client: TestClient, store: LocalStore) -> None:
    def serving_kg() -> float:
        rows = client.get(f"{V1}/carbon/summary?by=kind").json()["rows"]
        return float(next(r["emissionsKg"] for r in rows if r["key"] == "serving"))

    assert serving_kg() == 0.004
    assert client.get(f"{V1}/overview").json()["servingDeployments"] == 1
    share = {"modelVersion": "pets-v1", "energyKwh": 0.03, "emissionsKg": 0.009, "tokens": 9000}
    carbon = {"energyKwh": 0.03, "emissionsKg": 0.009, "tokens": 9000, "byModelVersion": [share]}
    store.patch("InferenceDeployment", "pets", {"status": {"carbon": carbon, "conditions": []}})
    assert serving_kg() == 0.009
    assert client.get(f"{V1}/overview").json()["servingDeployments"] == 0


def test_history_of_a_running_job_is_found_through_its_batch_job(
    client: TestClient, store: LocalStore
) -> None:
    """Before status.modelVersion is set, the run's folder comes from its Job's version label."""
    from model_garden.operator.finetunejob.objects import job_name

    labels = {"modelgarden.dev/model-version": "chat-v1"}
    store.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job_name("chat-run"), "labels": labels},
        }
    )
    folder = store.claim_dir("model-garden-artifacts") / "default/chat/v1"
    folder.mkdir(parents=True)
    line = {"time": "2026-11-27T10:00:01Z", "step": 7, "loss": 1.25}
    (folder / "history.jsonl").write_text(json.dumps(line) + "\n")
    points = client.get(f"{V1}/finetunejobs/default/chat-run/history").json()["points"]
    assert [(p["step"], p["loss"]) for p in points] == [(7, 1.25)]


def test_the_built_dashboard_is_served_beside_the_api(source: LocalSource, tmp_path: Path) -> None:
    static = tmp_path / "static"
    (static / "assets").mkdir(parents=True)
    (static / "index.html").write_text("<!doctype html><title>Model Garden</title>")
    (static / "assets" / "app.js").write_text("console.log('hi')")
    with TestClient(create_app(source, ReadApiSettings(static_dir=static))) as http:
        assert http.get("/").text.startswith("<!doctype html><title>Model Garden")
        assert http.get("/assets/app.js").text == "console.log('hi')"
        assert http.get("/api/v1/info").json()["mode"] == "local"
        assert http.get("/api/openapi.json").status_code == 200


def test_a_later_mg_eval_shows_in_the_card(client: TestClient, store: LocalStore) -> None:
    """`mg eval` writes the annotation, the reconciler the status; the card shows the figures."""
    evaluation = {
        "dataset": "held.jsonl",
        "loss": 1.5,
        "perplexity": 4.4817,
        "examples": 24,
        "tokens": 300,
        "evaluatedAt": "2026-11-27T12:00:00Z",
        "energyKwh": 0.0001,
        "emissionsKg": 0.00002,
        "method": "estimated",
    }
    store.patch(
        "ModelVersion",
        "pets-v1",
        {
            "metadata": {"annotations": {ANNOTATION_EVALUATION: json.dumps(evaluation)}},
            "status": {"evaluation": evaluation},
        },
    )
    card = client.get(f"{V1}/modelversions/default/pets-v1/card").json()["markdown"]
    assert card.startswith("# pets-v1") and "## Evaluation" in card
    assert "On `held.jsonl` (24 examples, 300 tokens scored): loss 1.5000" in card
