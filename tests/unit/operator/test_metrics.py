"""Metric series of deleted resources are removed (else /metrics reports them forever)."""

from __future__ import annotations

from typing import Any

from prometheus_client import generate_latest

from model_garden.operator.metrics import OperatorMetrics


def _body(kind: str, ns: str, name: str, **status: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"namespace": ns, "name": name},
        "spec": {"model": "chat"},
        "status": status,
    }


CARBON = {"carbon": {"energyKwh": 0.001, "emissionsKg": 0.002}}


def _names(metrics: OperatorMetrics, family: str) -> set[tuple[str, str]]:
    return {
        (s.labels["namespace"], s.labels["name"])
        for m in metrics.registry.collect()
        if m.name == family
        for s in m.samples
    }


def test_forget_removes_every_series_of_the_resource_only() -> None:
    metrics = OperatorMetrics()
    metrics.observe_statuses(
        "FineTuneJob",
        [_body("FineTuneJob", "a", "tune", **CARBON), _body("FineTuneJob", "b", "tune", **CARBON)],
    )
    metrics.observe_statuses(
        "InferenceDeployment", [_body("InferenceDeployment", "a", "tune", **CARBON)]
    )
    metrics.observe_statuses(
        "ModelVersion", [_body("ModelVersion", "a", "chat-v1", lifetimeEmissionsKg=0.5)]
    )
    assert _names(metrics, "modelgarden_finetunejob_energy_joules") == {
        ("a", "tune"),
        ("b", "tune"),
    }

    metrics.forget("FineTuneJob", "a", "tune")
    for family in (
        "modelgarden_finetunejob_energy_joules",
        "modelgarden_finetunejob_emissions_grams",
    ):
        assert _names(metrics, family) == {("b", "tune")}
    # another kind of the same name keeps its series
    assert _names(metrics, "modelgarden_inferencedeployment_energy_joules") == {("a", "tune")}

    metrics.forget("ModelVersion", "a", "chat-v1")  # a series with one more label (model)
    assert _names(metrics, "modelgarden_modelversion_lifetime_emissions_grams") == set()
    assert b'name="chat-v1"' not in generate_latest(metrics.registry)
    metrics.forget("FineTuneJob", "a", "gone")  # unknown: nothing to do


def test_observing_the_remaining_resources_drops_the_deleted_ones() -> None:
    metrics = OperatorMetrics()
    both = [
        _body("InferenceDeployment", "a", "x", **CARBON),
        _body("InferenceDeployment", "a", "y", **CARBON),
    ]
    metrics.observe_statuses("InferenceDeployment", both)
    metrics.observe_statuses("InferenceDeployment", both[1:])
    assert _names(metrics, "modelgarden_inferencedeployment_emissions_grams") == {("a", "y")}


def test_deleted_event_forgets_the_resource_series() -> None:
    """The handlers wire it: a DELETED event removes the resource's series at once."""
    from model_garden.operator import handlers
    from model_garden.operator.reconcile import INDEXES, Context
    from model_garden.operator.settings import OperatorSettings

    metrics = OperatorMetrics()
    ctx = Context(settings=OperatorSettings(), executor=None, metrics=metrics)  # type: ignore[arg-type]
    body = _body("InferenceDeployment", "a", "bot", **CARBON)
    metrics.observe_statuses("InferenceDeployment", [body])
    assert _names(metrics, "modelgarden_inferencedeployment_energy_joules") == {("a", "bot")}
    indexes: dict[str, Any] = {name: {} for name in INDEXES}
    handlers.idep_event(
        body=body,  # type: ignore[arg-type]
        type="DELETED",
        namespace="a",
        name="bot",
        memo={"ctx": ctx},  # type: ignore[arg-type]
        **indexes,
    )
    assert _names(metrics, "modelgarden_inferencedeployment_energy_joules") == set()


BUDGET = "modelgarden_finetunejob_carbon_budget_exceeded"


def _cond(kind: str, status: str, reason: str) -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason}


def _values(metrics: OperatorMetrics, family: str) -> dict[tuple[str, str], float]:
    return {
        (s.labels["namespace"], s.labels["name"]): s.value
        for m in metrics.registry.collect()
        if m.name == family
        for s in m.samples
    }


def test_a_job_stopped_by_its_carbon_budget_is_exported_per_job_until_forgotten() -> None:
    """The chart's ModelGardenCarbonBudgetExceeded alert fires on this series."""
    stopped = [
        _cond("Failed", "True", "CarbonBudgetExceeded"),
        _cond("Running", "False", "CarbonBudgetExceeded"),
    ]
    resuming = [stopped[0], _cond("Running", "False", "Resuming")]
    other_failure = [_cond("Failed", "True", "OOMKilled"), _cond("Running", "False", "OOMKilled")]
    metrics = OperatorMetrics()
    metrics.observe_statuses(
        "FineTuneJob",
        [
            _body("FineTuneJob", "a", "over", conditions=stopped, **CARBON),
            _body("FineTuneJob", "a", "oom", conditions=other_failure),
            _body("FineTuneJob", "b", "running", conditions=[_cond("Running", "True", "Training")]),
            _body("FineTuneJob", "b", "new"),
        ],
    )
    assert _values(metrics, BUDGET) == {
        ("a", "over"): 1.0,
        ("a", "oom"): 0.0,
        ("b", "running"): 0.0,
        ("b", "new"): 0.0,
    }
    # the budget was raised: the job resumes, the alert clears
    metrics.observe_statuses(
        "FineTuneJob", [_body("FineTuneJob", "a", "over", conditions=resuming, **CARBON)]
    )
    assert _values(metrics, BUDGET) == {("a", "over"): 0.0}  # the others were deleted
    metrics.observe_statuses(
        "FineTuneJob", [_body("FineTuneJob", "a", "over", conditions=stopped, **CARBON)]
    )
    assert _values(metrics, BUDGET) == {("a", "over"): 1.0}
    metrics.forget("FineTuneJob", "a", "over")
    assert _values(metrics, BUDGET) == {}
    assert b'name="over"' not in generate_latest(metrics.registry)
