"""Writes in local mode: refused without the printed token, made through the store with it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from model_garden.local.store import LocalStore

from .conftest import WRITE
from .fill import ftj

V1 = "/api/v1"


def test_writes_without_the_token_are_refused_and_change_nothing(
    client: TestClient, store: LocalStore
) -> None:
    attempts = [
        ("post", f"{V1}/finetunejobs/default/chat-run/cancel", None),
        ("post", f"{V1}/modelversions/default/pets-v2/promote", {"stage": "staging"}),
        ("patch", f"{V1}/inferencedeployments/default/pets/scale", {"replicas": 0}),
        ("delete", f"{V1}/inferencedeployments/default/pets", None),
        ("post", f"{V1}/finetunejobs", ftj("new-job")),
    ]
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        for method, url, body in attempts:
            reply = client.request(method, url, json=body, headers=headers)
            assert reply.status_code == 401, (method, url, reply.text)
            assert "token" in reply.json()["detail"]
    assert (
        client.get(f"{V1}/finetunejobs/default/chat-run").json()["spec"].get("suspend") is not True
    )
    assert store.get("ModelVersion", "pets-v2")["spec"]["stage"] == "none"  # type: ignore[index]
    assert store.get("InferenceDeployment", "pets")["spec"]["replicas"] == 1  # type: ignore[index]
    assert store.get("FineTuneJob", "new-job") is None


def test_cancel_promote_scale_with_the_token(client: TestClient, store: LocalStore) -> None:
    cancelled = client.post(f"{V1}/finetunejobs/default/chat-run/cancel", headers=WRITE)
    assert cancelled.status_code == 200 and cancelled.json()["spec"]["suspend"] is True
    assert store.get("FineTuneJob", "chat-run")["spec"]["suspend"] is True  # type: ignore[index]

    promoted = client.post(
        f"{V1}/modelversions/default/pets-v2/promote", json={"stage": "staging"}, headers=WRITE
    )
    assert promoted.status_code == 200 and promoted.json()["spec"]["stage"] == "staging"
    bad = client.post(
        f"{V1}/modelversions/default/pets-v2/promote", json={"stage": "gold"}, headers=WRITE
    )
    assert bad.status_code == 422 and bad.json()["detail"]["errors"][0]["field"] == "stage"

    scaled = client.patch(
        f"{V1}/inferencedeployments/default/pets/scale", json={"replicas": 0}, headers=WRITE
    )
    assert scaled.status_code == 200 and scaled.json()["spec"]["replicas"] == 0
    two = client.patch(
        f"{V1}/inferencedeployments/default/pets/scale", json={"replicas": 2}, headers=WRITE
    )
    assert two.status_code == 422 and "one replica" in two.json()["detail"]
    assert (
        client.patch(
            f"{V1}/inferencedeployments/default/nope/scale", json={"replicas": 0}, headers=WRITE
        ).status_code
        == 404
    )


def test_create_job_from_a_manifest(client: TestClient, store: LocalStore) -> None:
    body = ftj("from-form", model="form")
    del body["apiVersion"], body["kind"]
    created = client.post(f"{V1}/finetunejobs", json=body, headers=WRITE)
    assert created.status_code == 201, created.text
    assert (
        created.json()["metadata"]["uid"] and created.json()["metadata"]["namespace"] == "default"
    )
    assert store.get("FineTuneJob", "from-form") is not None
    again = client.post(f"{V1}/finetunejobs", json=body, headers=WRITE)
    assert again.status_code == 409


def test_create_job_refuses_an_invalid_manifest_naming_the_field(
    client: TestClient, store: LocalStore
) -> None:
    body = ftj("bad-form")
    body["spec"]["hyperparameters"]["epochs"] = 0
    reply = client.post(f"{V1}/finetunejobs", json=body, headers=WRITE)
    assert reply.status_code == 422
    fields = [e["field"] for e in reply.json()["detail"]["errors"]]
    assert "spec.hyperparameters.epochs" in fields
    assert store.get("FineTuneJob", "bad-form") is None


def test_create_and_delete_a_deployment(client: TestClient, store: LocalStore) -> None:
    body = {"namespace": "default", "name": "pets2", "version": "pets-v2", "adapters": ["pets-v1"]}
    created = client.post(f"{V1}/inferencedeployments", json=body, headers=WRITE)
    assert created.status_code == 201, created.text
    spec = store.get("InferenceDeployment", "pets2")["spec"]  # type: ignore[index]
    assert spec["modelVersion"] == "pets-v2"
    assert spec["adapters"] == [{"name": "pets-v1", "modelVersion": "pets-v1"}]
    two = client.post(
        f"{V1}/inferencedeployments", json={**body, "name": "two", "replicas": 2}, headers=WRITE
    )
    assert two.status_code == 422 and store.get("InferenceDeployment", "two") is None
    missing = client.post(
        f"{V1}/inferencedeployments",
        json={**body, "name": "x", "version": "nope-v9"},
        headers=WRITE,
    )
    assert missing.status_code == 404
    deleted = client.delete(f"{V1}/inferencedeployments/default/pets2", headers=WRITE)
    assert deleted.status_code == 204
    assert store.get("InferenceDeployment", "pets2") is None
    assert client.get(f"{V1}/inferencedeployments/default/pets2").status_code == 404
    assert (
        client.delete(f"{V1}/inferencedeployments/default/pets2", headers=WRITE).status_code == 404
    )


def test_chat_without_an_endpoint_is_a_conflict(client: TestClient, store: LocalStore) -> None:
    store.patch("InferenceDeployment", "pets", {"status": {"endpoint": None}})
    reply = client.post(
        f"{V1}/inferencedeployments/default/pets/chat/completions",
        json={"model": "pets", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert reply.status_code == 409 and "no endpoint" in reply.json()["detail"]
