"""FineTuneJobs: list, get, history, events, create, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import ValidationError

from model_garden.api import FineTuneJob

from .. import history, models
from ..deps import CallerDep, SettingsDep, SourceDep, must_get
from ..source import ApiError
from .resources import ListQueryDep, manifest_errors, must_parse, page

KIND = "FineTuneJob"
router = APIRouter(prefix="/finetunejobs", tags=["finetunejobs"])


@router.get("", response_model=models.JobList)
def list_jobs(source: SourceDep, caller: CallerDep, query: ListQueryDep) -> dict[str, Any]:
    return page(source, KIND, FineTuneJob, caller, query)


@router.get("/{namespace}/{name}", response_model=FineTuneJob)
def get_job(source: SourceDep, caller: CallerDep, namespace: str, name: str) -> FineTuneJob:
    return must_parse(FineTuneJob, must_get(source, KIND, namespace, name, caller))


@router.get("/{namespace}/{name}/history", response_model=models.JobHistory)
def job_history(
    source: SourceDep, settings: SettingsDep, caller: CallerDep, namespace: str, name: str
) -> models.JobHistory:
    ftj = must_get(source, KIND, namespace, name, caller)
    if settings.prometheus_url:
        return models.JobHistory(
            points=history.prometheus_job(settings.prometheus_url, ftj), source="prometheus"
        )
    path = source.job_history_file(ftj, caller)
    lines = history.read_jsonl([path]) if path else []
    return models.JobHistory(points=history.job_points(lines), source="history")


@router.get("/{namespace}/{name}/events", response_model=models.EventList)
def job_events(source: SourceDep, caller: CallerDep, namespace: str, name: str) -> models.EventList:
    must_get(source, KIND, namespace, name, caller)
    events = source.events(KIND, namespace, name, caller)
    return models.EventList(
        items=[
            models.Event(
                time=e.get("time"),
                type=e.get("type"),
                reason=e.get("reason"),
                message=e.get("message"),
            )
            for e in events
        ]
    )


@router.post("", response_model=FineTuneJob, status_code=201)
def create_job(
    source: SourceDep, caller: CallerDep, body: Annotated[dict[str, Any], Body()]
) -> FineTuneJob:
    """Start a FineTuneJob from a manifest (apiVersion and kind may be left out)."""
    manifest = {"apiVersion": "modelgarden.dev/v1alpha1", "kind": KIND, **body}
    if manifest["kind"] != KIND:
        raise ApiError(422, {"message": f"kind must be {KIND}", "errors": []})
    manifest.pop("status", None)
    try:
        FineTuneJob.model_validate(manifest)
    except ValidationError as exc:
        raise ApiError(422, manifest_errors(exc)) from exc
    return must_parse(FineTuneJob, source.create(manifest, caller))


@router.post("/{namespace}/{name}/cancel", response_model=FineTuneJob)
def cancel_job(source: SourceDep, caller: CallerDep, namespace: str, name: str) -> FineTuneJob:
    """``spec.suspend: true``, as ``mg jobs cancel``: the trainer checkpoints and stops."""
    patched = source.patch(KIND, namespace, name, {"spec": {"suspend": True}}, caller)
    return must_parse(FineTuneJob, patched)
