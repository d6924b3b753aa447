"""The overview page's figures, and what the app is (mode, namespaces, write rule)."""

from __future__ import annotations

from fastapi import APIRouter

from model_garden import __version__
from model_garden.api import FineTuneJob

from .. import models, summaries
from ..deps import CallerDep, SettingsDep, SourceDep
from .carbon import RESULTS, cache_key, tagged
from .resources import parse

router = APIRouter(tags=["overview"])


@router.get("/info", response_model=models.Info)
def info(source: SourceDep, settings: SettingsDep, caller: CallerDep) -> models.Info:
    return models.Info(
        mode=source.mode,
        version=__version__,
        namespaces=source.namespaces(caller),
        prometheus=settings.prometheus_url is not None,
        writes="token" if source.mode == "local" else "caller",
    )


@router.get("/overview", response_model=models.Overview)
def overview(source: SourceDep, caller: CallerDep) -> models.Overview:
    def compute() -> models.Overview:
        return summaries.overview(
            source.items("FineTuneJob", caller),
            source.items("ModelVersion", caller),
            source.items("InferenceDeployment", caller),
            tagged(source, caller),
            lambda body: parse(FineTuneJob, body),
        )

    result: models.Overview = RESULTS.get((*cache_key(source, caller), "overview"), compute)
    return result
