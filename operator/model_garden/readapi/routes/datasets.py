"""Datasets: list, preview, stats, upload (validated before it is stored)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, UploadFile

from .. import datasets, models
from ..deps import CallerDep, SettingsDep, SourceDep
from ..source import ApiError

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("", response_model=models.DatasetList)
def list_datasets(
    source: SourceDep, caller: CallerDep, namespace: str | None = None
) -> models.DatasetList:
    items: list[models.DatasetInfo] = []
    for ns in [namespace] if namespace else source.namespaces(caller):
        if ns in source.namespaces(caller):
            items += datasets.listing(source.datasets_dir(ns), ns).items
    return models.DatasetList(items=items)


def _visible(source: SourceDep, caller: CallerDep, namespace: str) -> None:
    if namespace not in source.namespaces(caller):
        raise ApiError(404, f"namespace {namespace} not found")


@router.get("/{namespace}/{name}/preview", response_model=models.DatasetPreview)
def preview(
    source: SourceDep,
    caller: CallerDep,
    namespace: str,
    name: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> models.DatasetPreview:
    _visible(source, caller, namespace)
    return datasets.preview(source.datasets_dir(namespace), name, limit)


@router.get("/{namespace}/{name}/stats", response_model=models.DatasetStats)
def stats(source: SourceDep, caller: CallerDep, namespace: str, name: str) -> models.DatasetStats:
    _visible(source, caller, namespace)
    return datasets.stats(source.datasets_dir(namespace), name)


@router.post("/{namespace}", response_model=models.Uploaded, status_code=201)
def upload(
    source: SourceDep, settings: SettingsDep, caller: CallerDep, namespace: str, file: UploadFile
) -> models.Uploaded:
    """Store a dataset under ``<namespace>/datasets/`` once every row passed the trainer's
    validator; otherwise 422 with the lines at fault, and nothing stored."""
    source.authorize_write(caller)
    source.authorize_upload(namespace, caller)
    return datasets.upload(
        source.datasets_dir(namespace),
        namespace,
        file.filename or "",
        file.file,
        settings.max_upload_bytes,
    )
