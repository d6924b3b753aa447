"""Every operation counted (issue 13, item 1): each kind of operation the code has reports its
energy and emissions into the version's carbonByOperation, and the lifetime is their sum."""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_garden.api.labels import ANNOTATION_OPERATIONS_CARBON
from model_garden.api.modelversion import OperationCarbon, OperationKind
from model_garden.carbon.grid import grid_intensity
from model_garden.cli.ledger import added
from model_garden.operator.modelversion.plan import (
    VERIFY_WATTS_PER_THREAD,
    ModelVersionWorld,
    plan_modelversion,
)

from .factories import DIGEST, NOW, SETTINGS, idep, mv

CLI_RUNS = {
    "export": {"energyKwh": 0.002, "emissionsKg": 0.0004, "method": "estimated"},
    "evaluation": {"energyKwh": 0.001, "emissionsKg": 0.0002, "method": "measured"},
    "batch": {"energyKwh": 0.003, "emissionsKg": 0.0006, "method": "estimated"},
}


def _verify_pod(message: str) -> dict[str, Any]:
    term = {"exitCode": 0, "message": message}
    return {
        "metadata": {"name": "v", "creationTimestamp": "2026-11-27T10:00:00Z"},
        "status": {"containerStatuses": [{"name": "verify", "state": {"terminated": term}}]},
    }


def _version() -> dict[str, Any]:
    body = mv(ready=False)
    body["spec"]["trainingCarbon"] = {
        "energyKwh": "1.5",
        "emissionsKg": "0.25",
        "method": "measured",
    }
    ledger = None
    for kind, carbon in CLI_RUNS.items():
        ledger = added(ledger, kind, carbon)
    ledger = added(ledger, "export", CLI_RUNS["export"])  # a second export adds up
    body["metadata"]["annotations"] = {ANNOTATION_OPERATIONS_CARBON: ledger}
    return body


def _plan() -> dict[str, Any]:
    served = idep(
        "bot",
        modelVersion="chat-v1",
        status={
            "carbon": {
                "byModelVersion": [
                    {"modelVersion": "chat-v1", "energyKwh": 2.0, "emissionsKg": 0.5, "tokens": 9}
                ]
            }
        },
    )
    world = ModelVersionWorld(
        deployments=[served],
        verify_job={"status": {"conditions": [{"type": "Complete", "status": "True"}]}},
        verify_pods=[
            _verify_pod(json.dumps({"sizeBytes": 123, "digest": DIGEST, "cpuSeconds": 9}))
        ],
    )
    plan = plan_modelversion(_version(), world, SETTINGS, NOW)
    assert plan.status
    return plan.status


def test_every_operation_kind_reports_energy_and_emissions_into_the_versions_totals() -> None:
    status = _plan()
    by_kind = {k: OperationCarbon.model_validate(v) for k, v in status["carbonByOperation"].items()}
    assert set(by_kind) == {k.value for k in OperationKind}, "a kind the code has is not counted"
    for kind, carbon in by_kind.items():
        assert carbon.energy_kwh > 0 and carbon.emissions_kg > 0 and carbon.count >= 1, kind
    assert status["lifetimeEmissionsKg"] == pytest.approx(
        sum(c.emissions_kg for c in by_kind.values())
    )


def test_the_whole_life_is_amortised_over_the_tokens_served() -> None:
    status = _plan()
    assert status["tokensServed"] == 9
    assert status["lifetimeGramsPer1KTokens"] == pytest.approx(
        status["lifetimeEmissionsKg"] * 1e6 / 9
    )
    unserved = plan_modelversion(_version(), ModelVersionWorld(), SETTINGS, NOW).status or {}
    assert unserved.get("lifetimeGramsPer1KTokens") is None, "none before a token"


def test_the_figures_add_up_exactly_on_recorded_numbers() -> None:
    by_kind = _plan()["carbonByOperation"]
    assert by_kind["training"] == {
        "energyKwh": 1.5, "emissionsKg": 0.25, "count": 1, "method": "measured"
    }  # fmt: skip
    assert by_kind["serving"]["emissionsKg"] == pytest.approx(0.5)
    assert by_kind["export"]["count"] == 2
    assert by_kind["export"]["emissionsKg"] == pytest.approx(0.0008)
    assert by_kind["evaluation"]["method"] == "measured"
    kwh = 9 * VERIFY_WATTS_PER_THREAD / 3.6e6
    intensity = grid_intensity(SETTINGS.default_country, SETTINGS.default_region).g_per_kwh
    assert by_kind["verification"]["energyKwh"] == pytest.approx(kwh)
    assert by_kind["verification"]["emissionsKg"] == pytest.approx(kwh * intensity / 1000)
    assert by_kind["verification"]["method"] == "estimated"


def test_the_verifications_carbon_stays_once_its_job_is_gone() -> None:
    first = _plan()
    body = _version()
    body["status"] = {**first, "digest": DIGEST, "sizeBytes": 123}
    again = plan_modelversion(body, ModelVersionWorld(), SETTINGS, NOW)
    kept = (again.status or {}).get("carbonByOperation", first["carbonByOperation"])
    assert kept["verification"] == first["carbonByOperation"]["verification"]


def test_a_user_cannot_write_what_the_operator_observes() -> None:
    body = _version()
    body["metadata"]["annotations"][ANNOTATION_OPERATIONS_CARBON] = json.dumps(
        {"training": {"energyKwh": 0, "emissionsKg": 0, "count": 1}, "export": "nonsense"}
    )
    plan = plan_modelversion(body, ModelVersionWorld(), SETTINGS, NOW)
    assert plan.status
    by_kind = plan.status["carbonByOperation"]
    assert by_kind["training"]["emissionsKg"] == 0.25 and "export" not in by_kind


def test_an_unreadable_ledger_starts_anew() -> None:
    text = added("not json", "export", CLI_RUNS["export"])
    assert json.loads(text) == {
        "export": {"energyKwh": 0.002, "emissionsKg": 0.0004, "count": 1, "method": "estimated"}
    }
