"""Carbon summaries (from model_garden.carbon.report's records), recommendations
(model_garden.carbon.recommend) and experiments."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from .. import models, summaries
from ..deps import CallerDep, SettingsDep, SourceDep
from ..source import ApiError, Caller, Source

router = APIRouter(tags=["carbon"])


MEMO = summaries.Memo()
RESULTS = summaries.Memo(256)


def tagged(source: Source, caller: Caller) -> list[summaries.Tagged]:
    """Every operation's record, computed once per change of the source (and per caller: in a
    cluster what one may see is not what another may)."""
    key = cache_key(source, caller)

    def compute() -> list[summaries.Tagged]:
        return summaries.tagged_records(
            source.items("FineTuneJob", caller),
            source.items("ModelVersion", caller),
            source.items("InferenceDeployment", caller),
        )

    result: list[summaries.Tagged] = MEMO.get(key, compute)
    return result


def cache_key(source: Source, caller: Caller) -> tuple[object, ...]:
    """What a cached result depends on: the source's generation (read after a read that brings
    the source up to date and checks the caller), the caller, and the day."""
    source.items("FineTuneJob", caller)
    return (id(source), source.generation, caller.token, datetime.now(UTC).date())


def _all(source: Source, caller: Caller) -> list[summaries.Tagged]:
    return tagged(source, caller)


@router.get("/carbon/summary", response_model=models.CarbonSummary)
def summary(
    source: SourceDep,
    caller: CallerDep,
    by: Literal[
        "model", "version", "experiment", "namespace", "region", "method", "kind"
    ] = "model",
) -> models.CarbonSummary:
    result: models.CarbonSummary = RESULTS.get(
        (*cache_key(source, caller), "summary", by),
        lambda: summaries.summary(_all(source, caller), by),
    )
    return result


@router.get("/carbon/models", response_model=models.ModelCarbonList)
def per_model(source: SourceDep, caller: CallerDep) -> models.ModelCarbonList:
    result: models.ModelCarbonList = RESULTS.get(
        (*cache_key(source, caller), "models"), lambda: summaries.per_model(_all(source, caller))
    )
    return result


@router.get("/carbon/timeline", response_model=models.Timeline)
def timeline(
    source: SourceDep, caller: CallerDep, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> models.Timeline:
    result: models.Timeline = RESULTS.get(
        (*cache_key(source, caller), "timeline", days),
        lambda: summaries.timeline(_all(source, caller), days),
    )
    return result


@router.get("/experiments", response_model=models.ExperimentList)
def experiments(source: SourceDep, caller: CallerDep) -> models.ExperimentList:
    result: models.ExperimentList = RESULTS.get(
        (*cache_key(source, caller), "experiments"),
        lambda: summaries.experiments(
            source.items("FineTuneJob", caller), source.items("ModelVersion", caller)
        ),
    )
    return result


TARGET_KINDS = {"finetunejob": "FineTuneJob", "inferencedeployment": "InferenceDeployment"}


def _histories(
    source: Source, caller: Caller, jobs: list[dict[str, Any]], prometheus: str | None
) -> dict[str, list[dict[str, Any]]]:
    """Each job's loss history, as its history route reads it (Prometheus, else the trainer's
    history file), keyed for the rules; a job whose history cannot be read is left out."""
    import httpx

    from model_garden.carbon.recommend import key

    from .. import history

    out: dict[str, list[dict[str, Any]]] = {}
    for ftj in jobs:
        if not ((ftj.get("status") or {}).get("carbon") or {}).get("energyKwh"):
            continue  # no figures: no rule reads its history
        meta = ftj.get("metadata") or {}
        name, ns = str(meta.get("name")), str(meta.get("namespace") or "default")
        try:
            if prometheus:
                points = history.prometheus_job(prometheus, ftj)
                lines = [p.model_dump(by_alias=True) for p in points]
            else:
                path = source.job_history_file(ftj, caller)
                lines = history.read_jsonl([path]) if path else []
        except (httpx.HTTPError, OSError, ValueError):
            continue  # one unreadable history must not hide the other jobs' advice
        if lines:
            out[key("FineTuneJob", name, ns)] = lines
    return out


def recommendations_of(
    source: Source,
    caller: Caller,
    regions: dict[str, float],
    prometheus: str | None,
) -> models.RecommendationList:
    from model_garden.carbon.recommend import evaluate, from_objects

    job_objs = source.items("FineTuneJob", caller)
    jobs, deployments, _skipped = from_objects(
        job_objs,
        source.items("ModelVersion", caller),
        source.items("InferenceDeployment", caller),
        histories=_histories(source, caller, job_objs, prometheus),
    )
    advice = evaluate(jobs, deployments, regions=regions)
    items = [models.RecommendationItem.model_validate(asdict(r)) for r in advice.recommendations]
    return models.RecommendationList(
        items=items,
        unknown=[models.NotJudged.model_validate(asdict(u)) for u in advice.unknown],
        total_saving_kg=math.fsum(r.saving_kg for r in items),
    )


@router.get("/carbon/recommendations", response_model=models.RecommendationList)
def recommendations(
    source: SourceDep,
    caller: CallerDep,
    settings: SettingsDep,
    region: Annotated[
        list[str] | None,
        Query(
            description="A candidate region (repeat): CODE at the grid table's figure, or CODE=G."
        ),
    ] = None,
    namespace: str | None = None,
    target: Annotated[
        str | None,
        Query(description="Only one object: FineTuneJob/NAME or InferenceDeployment/NAME."),
    ] = None,
) -> models.RecommendationList:
    """Carbon advice, biggest saving first, each with its saving and assumptions; and what each
    rule could not judge. No forecast or GPU utilisation source is wired here yet: those rules
    report themselves in ``unknown``."""
    from model_garden.carbon.grid import grid_intensity
    from model_garden.carbon.recommend import candidate_regions

    try:
        regions = candidate_regions(region or [], lambda code: grid_intensity(code).g_per_kwh)
    except ValueError as exc:
        raise ApiError(422, f"region: {exc}") from None
    wanted = None
    if target:
        kind, sep, name = target.partition("/")
        if not sep or not name or kind.lower() not in TARGET_KINDS:
            raise ApiError(
                422, f"target: {target!r} is not FineTuneJob/NAME or InferenceDeployment/NAME"
            )
        wanted = (TARGET_KINDS[kind.lower()], name)
    result: models.RecommendationList = RESULTS.get(
        (*cache_key(source, caller), "recommendations", tuple(sorted(regions.items()))),
        lambda: recommendations_of(source, caller, regions, settings.prometheus_url),
    )
    if namespace is None and wanted is None:
        return result

    def keep(kind: str, name: str, ns: str | None) -> bool:
        if namespace is not None and (ns or "default") != namespace:
            return False
        return wanted is None or (kind, name) == wanted

    items = [r for r in result.items if keep(r.target_kind, r.target, r.namespace)]
    return models.RecommendationList(
        items=items,
        unknown=[
            u for u in result.unknown if not u.target or keep(u.target_kind, u.target, u.namespace)
        ],
        total_saving_kg=math.fsum(r.saving_kg for r in items),
    )
