"""Carbon summaries (from model_garden.carbon.report's records) and experiments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from .. import models, summaries
from ..deps import CallerDep, SourceDep
from ..source import Caller, Source

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
