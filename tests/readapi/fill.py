"""Valid resources for the read API's tests, stored the way the operator leaves them."""

from __future__ import annotations

from typing import Any

from model_garden.local.store import LocalStore

API = "modelgarden.dev/v1alpha1"
TODAY = "2026-11-27T12:00:00Z"


def condition(type_: str, status: str = "True", reason: str = "Test") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": f"{type_} is {status}",
        "lastTransitionTime": TODAY,
    }


def ftj(
    name: str,
    *,
    model: str | None = None,
    experiment: str | None = None,
    lr: str = "2e-4",
    rank: int = 16,
) -> dict[str, Any]:
    labels = {"modelgarden.dev/experiment": experiment} if experiment else {}
    spec: dict[str, Any] = {
        "baseModel": {"uri": "pvc://model-garden-artifacts/base/tiny-llama"},
        "dataset": {"uri": "pvc://model-garden-artifacts/default/datasets/pets.jsonl"},
        "hyperparameters": {"epochs": 2, "learningRate": lr},
        "method": {"type": "lora", "lora": {"rank": rank}},
    }
    if model:
        spec["output"] = {"model": model}
    return {
        "apiVersion": API,
        "kind": "FineTuneJob",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def job_status(
    state: str,
    *,
    loss: float,
    kg: float,
    kwh: float,
    country: str = "FRA",
    version: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [condition(state)],
        "progress": {
            "step": 10,
            "totalSteps": 10,
            "epoch": 2.0,
            "loss": loss,
            "evalLoss": loss + 0.1,
        },
        "carbon": {"energyKwh": kwh, "emissionsKg": kg, "country": country, "method": "estimated"},
        "startTime": "2026-11-27T10:00:00Z",
    }
    if state == "Succeeded":
        status["completionTime"] = "2026-11-27T10:30:00Z"
    if version:
        status["modelVersion"] = version
    return status


def mv(model: str, version: int, *, job: str | None = None, stage: str = "none") -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{version}"},
        "spec": {
            "model": model,
            "version": version,
            "artifact": {
                "uri": f"pvc://model-garden-artifacts/default/{model}/v{version}/adapter",
                "format": "adapter",
                "baseModel": "pvc://model-garden-artifacts/base/tiny-llama",
            },
            "source": {"fineTuneJob": job} if job else {},
            "metrics": {"trainLoss": "0.9", "evalLoss": "1.1"},
            "stage": stage,
        },
    }


def idep(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceDeployment",
        "metadata": {"name": name},
        "spec": {"modelVersion": version, "replicas": 1},
    }


def idep_status(
    version: str, *, kg: float, kwh: float, tokens: int, measured: bool
) -> dict[str, Any]:
    return {
        "conditions": [condition("Ready")],
        "endpoint": "http://127.0.0.1:9/v1",
        "modelVersion": version,
        "replicas": 1,
        "readyReplicas": 1,
        "carbon": {
            "energyKwh": kwh,
            "emissionsKg": kg,
            "tokens": tokens,
            "region": "DEU",
            "method": "measured" if measured else "estimated",
            "byModelVersion": [
                {"modelVersion": version, "energyKwh": kwh, "emissionsKg": kg, "tokens": tokens}
            ],
        },
    }


def put(
    store: LocalStore, body: dict[str, Any], status: dict[str, Any] | None = None
) -> dict[str, Any]:
    created = store.create(body)
    if status is not None:
        created = (
            store.patch(created["kind"], created["metadata"]["name"], {"status": status}) or created
        )
    return created


def fill(store: LocalStore) -> None:
    """Three jobs (two in experiment ``lr-sweep``), two versions, one deployment."""
    put(
        store,
        ftj("pets-a", model="pets", experiment="lr-sweep"),
        job_status("Succeeded", loss=0.8, kg=0.002, kwh=0.04, version="pets-v1"),
    )
    put(
        store,
        ftj("pets-b", model="pets", experiment="lr-sweep", lr="1e-4", rank=8),
        job_status("Succeeded", loss=0.7, kg=0.003, kwh=0.05, version="pets-v2"),
    )
    put(
        store,
        ftj("chat-run", model="chat"),
        job_status("Running", loss=1.5, kg=0.001, kwh=0.01, country="USA"),
    )
    put(store, mv("pets", 1, job="pets-a", stage="production"))
    put(store, mv("pets", 2, job="pets-b"))
    put(
        store,
        idep("pets", "pets-v1"),
        idep_status("pets-v1", kg=0.004, kwh=0.02, tokens=8000, measured=True),
    )
