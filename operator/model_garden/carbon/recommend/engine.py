"""Every rule on every object: the recommendations, biggest saving first, and what each rule
could not judge for lack of an input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import (
    DEFAULTS,
    EARLY_STOPPING,
    LOWER_INTENSITY_REGION,
    LOWER_INTENSITY_WINDOW,
    PARAMETER_EFFICIENT,
    RIGHT_SIZE_GPUS,
    DeploymentFacts,
    Facts,
    ForecastPoint,
    JobFacts,
    Recommendation,
    Thresholds,
)
from .rules import (
    early_stopping,
    idle_deployment,
    kind_of,
    lower_intensity_region,
    lower_intensity_window,
    parameter_efficient,
    right_size_gpus,
)


@dataclass(frozen=True)
class Unknown:
    """A rule that could not judge an object: what it lacked."""

    rule: str
    target_kind: str
    target: str
    reason: str
    namespace: str | None = None


@dataclass
class Advice:
    """Every recommendation, biggest saving first, and what could not be judged."""

    recommendations: list[Recommendation] = field(default_factory=list)
    unknown: list[Unknown] = field(default_factory=list)


def evaluate(
    jobs: Sequence[JobFacts],
    deployments: Sequence[DeploymentFacts],
    *,
    regions: Mapping[str, float] | None = None,
    forecast: Sequence[ForecastPoint] | None = None,
    t: Thresholds = DEFAULTS,
) -> Advice:
    """Every rule on every object; a rule lacking an input says so in ``unknown``."""
    out = Advice()

    def missing(rule: str, facts: Facts, reason: str) -> None:
        out.unknown.append(Unknown(rule, kind_of(facts), facts.name, reason, facts.namespace))

    found: list[Recommendation | None] = []
    for job in jobs:
        if job.method == "full" and job.parameters is None:
            missing(PARAMETER_EFFICIENT, job, "parameter count not known")
        found.append(parameter_efficient(job, t))
        if job.evals is None:
            missing(EARLY_STOPPING, job, "eval loss history not known")
        found.append(early_stopping(job, t))
        if forecast:
            found.append(lower_intensity_window(job, forecast, t))
    every: list[Facts] = [*jobs, *deployments]
    for facts in every:
        if regions:
            found.append(lower_intensity_region(facts, regions, t))
        if facts.gpus > 1 and facts.gpu_utilisation is None:
            missing(RIGHT_SIZE_GPUS, facts, "GPU utilisation not known")
        found.append(right_size_gpus(facts, t))
    for dep in deployments:
        found.append(idle_deployment(dep, t))
    if not regions:
        out.unknown.append(Unknown(LOWER_INTENSITY_REGION, "", "", "no candidate regions"))
    if not forecast:
        out.unknown.append(Unknown(LOWER_INTENSITY_WINDOW, "", "", "no intensity forecast"))
    out.recommendations = sorted(
        (r for r in found if r is not None),
        key=lambda r: (-r.saving_kg, r.rule, r.target_kind, r.target),
    )
    return out


def status_briefs(advice: Advice, limit: int = 3) -> list[dict[str, Any]]:
    """The few biggest recommendations as a status lists them (rule, message, saving rounded to
    two significant digits, so a meter's every poll does not rewrite the status)."""
    out = []
    for rec in advice.recommendations[:limit]:
        saving = float(f"{rec.saving_kg:.2g}") if rec.saving_kg > 0 else 0.0
        out.append({"rule": rec.rule, "message": rec.message[:400], "savingKg": saving})
    return out
