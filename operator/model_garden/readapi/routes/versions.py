"""ModelVersions: list, get, lineage, card, promote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.labels import ANNOTATION_EVALUATION
from model_garden.api.modelversion import evaluation_card_lines

from .. import models
from ..deps import CallerDep, SourceDep, must_get
from .resources import ListQueryDep, must_parse, page, parse

KIND = "ModelVersion"
router = APIRouter(prefix="/modelversions", tags=["modelversions"])


@router.get("", response_model=models.VersionList)
def list_versions(
    source: SourceDep, caller: CallerDep, query: ListQueryDep, stage: str | None = None
) -> dict[str, Any]:
    return page(source, KIND, ModelVersion, caller, query, stage=stage)


@router.get("/{namespace}/{name}", response_model=ModelVersion)
def get_version(source: SourceDep, caller: CallerDep, namespace: str, name: str) -> ModelVersion:
    return must_parse(ModelVersion, must_get(source, KIND, namespace, name, caller))


@router.get("/{namespace}/{name}/lineage", response_model=models.Lineage)
def lineage(source: SourceDep, caller: CallerDep, namespace: str, name: str) -> models.Lineage:
    """The job that made the version and the deployments serving it (as base or adapter)."""
    mv = must_parse(ModelVersion, must_get(source, KIND, namespace, name, caller))
    job = None
    if mv.spec.source.fine_tune_job:
        body = source.get("FineTuneJob", namespace, mv.spec.source.fine_tune_job, caller)
        job = parse(FineTuneJob, body) if body else None
    deployments = []
    for body in source.items("InferenceDeployment", caller, namespace):
        idep = parse(InferenceDeployment, body)
        if idep is None:
            continue
        serves = {idep.status.model_version, idep.spec.model_version}
        serves |= {a.model_version for a in idep.spec.adapters}
        if name in serves or idep.metadata.name in mv.status.serving_deployments:
            deployments.append(idep)
    deployments.sort(key=lambda d: d.metadata.name)
    return models.Lineage(job=job, version=mv, deployments=deployments)


@router.get("/{namespace}/{name}/card", response_model=models.Card)
def card(source: SourceDep, caller: CallerDep, namespace: str, name: str) -> models.Card:
    """The model card (README.md the trainer writes with the artifact), else one made from
    the version's fields."""
    mv = must_parse(ModelVersion, must_get(source, KIND, namespace, name, caller))
    text = _card_file(source, mv)
    markdown = text if text is not None else _card_from_fields(mv)
    if ANNOTATION_EVALUATION in mv.metadata.annotations and mv.status and mv.status.evaluation:
        # a later `mg eval` than the card the trainer wrote: shown with it
        markdown = (
            markdown.rstrip("\n") + "\n\n" + "\n".join(evaluation_card_lines(mv.status.evaluation))
        )
    return models.Card(markdown=markdown)


def _card_file(source: Any, mv: ModelVersion) -> str | None:
    store = getattr(source, "store", None)
    folder: Path
    if store is None:
        root = getattr(source, "artifacts_dir", None)
        if root is None or not mv.spec.artifact.uri.startswith("pvc://"):
            return None
        claim_path = mv.spec.artifact.uri.removeprefix("pvc://").partition("/")[2]
        folder = root / claim_path
    else:
        folder = store.local_path(mv.spec.artifact.uri)
    for candidate in (folder / "README.md", folder.parent / "README.md"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace")
    return None


def _card_from_fields(mv: ModelVersion) -> str:
    lines = [f"# {mv.metadata.name}", "", f"- model: {mv.spec.model}, version {mv.spec.version}"]
    lines.append(f"- artifact: {mv.spec.artifact.uri} ({mv.spec.artifact.format})")
    if mv.spec.source.fine_tune_job:
        lines.append(f"- from FineTuneJob: {mv.spec.source.fine_tune_job}")
    lines.append(f"- stage: {mv.spec.stage}")
    if mv.spec.metrics:
        lines += ["", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in sorted(mv.spec.metrics.items())]
    if mv.spec.training_carbon:
        tc = mv.spec.training_carbon
        lines += ["", f"Training: {tc.energy_kwh} kWh, {tc.emissions_kg} kg CO2e ({tc.method})."]
    return "\n".join(lines) + "\n"


@router.post("/{namespace}/{name}/promote", response_model=ModelVersion)
def promote(
    source: SourceDep, caller: CallerDep, namespace: str, name: str, body: models.Promote
) -> ModelVersion:
    """Set the stage, as ``mg versions promote``."""
    patched = source.patch(KIND, namespace, name, {"spec": {"stage": str(body.stage)}}, caller)
    return must_parse(ModelVersion, patched)
