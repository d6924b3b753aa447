"""Carbon budgets beyond one job (issue 13, item 4): a namespace's and an experiment's jobs
together; once what they spent reaches the budget, a new job waits or is refused (a setting),
and its Running condition says why with the figures."""

from __future__ import annotations

from typing import Any

import pytest

from model_garden.api import FineTuneJob
from model_garden.operator.finetunejob.admission import decide
from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob

from .factories import NOW, SETTINGS, conditions, ftj


def _spent(name: str, kg: float, experiment: str) -> FineTuneJob:
    body = ftj(name, status={"carbon": {"energyKwh": kg * 4, "emissionsKg": kg}})
    body["metadata"]["labels"] = {"modelgarden.dev/experiment": experiment}
    return FineTuneJob.model_validate(body)


def test_the_admission_sums_what_the_others_spent() -> None:
    me = FineTuneJob.model_validate(ftj("new"))  # experiment exp1
    others = [_spent("a", 0.25, "exp1"), _spent("b", 0.5, "exp2"), me]
    decision = decide(me, others, [], {})
    assert (decision.namespace_spent_kg, decision.experiment_spent_kg) == (0.75, 0.25)


CASES: list[tuple[str, dict[str, Any], float, float, tuple[str, str] | None]] = [
    # (name, settings, namespace spent, experiment spent, Running condition or None: created)
    ("no budget", {}, 9.0, 9.0, None),
    ("namespace budget left", {"namespace_budgets_kg": {"team": 1.0}}, 0.5, 0.5, None),
    (
        "namespace budget spent: waits",
        {"namespace_budgets_kg": {"team": 1.0}},
        1.0,
        0.0,
        ("False", "BudgetExhausted"),
    ),
    (
        "experiment budget spent: waits",
        {"experiment_budgets_kg": {"exp1": 0.2}},
        0.1,
        0.25,
        ("False", "BudgetExhausted"),
    ),
    ("another experiment's budget", {"experiment_budgets_kg": {"exp2": 0.2}}, 5.0, 5.0, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_spent_budget_holds_new_jobs(
    case: tuple[str, dict[str, Any], float, float, tuple[str, str] | None],
) -> None:
    _, overrides, ns_kg, exp_kg, held = case
    settings = SETTINGS.model_copy(update=overrides)
    world = FineTuneJobWorld(namespace_spent_kg=ns_kg, experiment_spent_kg=exp_kg)
    plan = plan_finetunejob(ftj(), world, settings, NOW)
    jobs = [o for o in plan.create if o["kind"] == "Job"]
    if held is None:
        assert len(jobs) == 1
        return
    assert jobs == [] and conditions(plan.status)["Running"] == held
    message = next(c for c in plan.status["conditions"] if c["type"] == "Running")["message"]  # type: ignore[index]
    assert "carbon budget" in message and "waiting" in message
    assert [e.reason for e in plan.events] == ["BudgetExhausted"]


def test_with_refuse_a_new_job_fails_at_once_and_says_why() -> None:
    settings = SETTINGS.model_copy(
        update={"namespace_budgets_kg": {"team": 1.0}, "budget_action": "refuse"}
    )
    plan = plan_finetunejob(ftj(), FineTuneJobWorld(namespace_spent_kg=1.5), settings, NOW)
    assert plan.create == []
    assert conditions(plan.status)["Failed"] == ("True", "BudgetExhausted")
    failed = next(c for c in plan.status["conditions"] if c["type"] == "Failed")  # type: ignore[index]
    assert "1.5 kg CO2e of 1 kg" in failed["message"] and "refused" in failed["message"]
    assert plan.status and plan.status["completionTime"]
