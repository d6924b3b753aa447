"""A FineTuneJob from a manifest (``-f``) or from ``train``'s flags, checked by the API models.

Errors name the field as the API server would (``spec.hyperparameters.maxSteps: …``), on one
line. Paths on this machine become ``file://`` URIs in local mode; in a cluster they are refused
(a pod cannot read this machine's files).
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from .errors import InvalidInput

API = "modelgarden.dev/v1alpha1"
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


def read_manifest(path: str) -> dict[str, Any]:
    """The one FineTuneJob of a YAML file (``-`` reads stdin)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}") from exc
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "FineTuneJob"]
    if len(jobs) != 1:
        kinds = ", ".join(str(d.get("kind")) for d in docs if isinstance(d, dict)) or "nothing"
        raise InvalidInput(f"{path}: expected one FineTuneJob, found {kinds}")
    job = jobs[0]
    if job.get("apiVersion") != API:
        raise InvalidInput(
            f"{path}: apiVersion: Unsupported value {job.get('apiVersion')!r}: supported: {API}"
        )
    return job


def validate(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the schema's defaults, or InvalidInput naming the fields at fault."""
    from pydantic import ValidationError

    from model_garden.api import FineTuneJob
    from model_garden.api.common import describe_errors

    name = (body.get("metadata") or {}).get("name", "")
    try:
        ftj = FineTuneJob.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(describe_errors(exc)[:3])
        more = len(exc.errors()) - 3
        raise InvalidInput(
            f"FineTuneJob {name!r} is invalid: {problems}"
            + (f" (and {more} more)" if more > 0 else "")
        ) from exc
    wire = ftj.model_dump(mode="json", by_alias=True, exclude_none=True)
    wire.pop("status", None)
    return wire


def local_paths(body: dict[str, Any], where: Callable[[str], Path]) -> None:
    """Local mode: the files a run reads (dataset, base model) must exist where ``where`` puts
    their URIs (a ``file://`` path, or a claim's folder in the store)."""
    spec = body.get("spec") or {}
    for field, uri in (
        ("spec.dataset.uri", (spec.get("dataset") or {}).get("uri")),
        ("spec.baseModel.uri", (spec.get("baseModel") or {}).get("uri")),
    ):
        if isinstance(uri, str) and uri.startswith(("file://", "pvc://")):
            path = where(uri)
            if not path.exists():
                raise InvalidInput(f"{field}: {uri} is not on this machine ({path} does not exist)")


def _slug(text: str, limit: int = 40) -> str:
    slug = _NOT_LABEL.sub("-", text.lower()).strip("-")[:limit].strip("-")
    return slug if slug and slug[0].isalnum() else f"m{slug}"


def _file_uri(value: str, what: str, local: bool) -> str:
    if "://" in value:
        return value
    path = Path(value).expanduser()
    if not local:
        raise InvalidInput(
            f"{what} {value} is a path on this machine, which a cluster cannot read: pass"
            " pvc://<claim>/<path> (or s3://, or file:// on the nodes)"
        )
    if not path.exists():
        raise InvalidInput(f"{what} {value}: no such file or directory")
    return f"file://{path.resolve()}"


def base_model(value: str, local: bool) -> dict[str, Any]:
    """``--base-model``: a URI, a path (local), a hub id (``org/name``) or a ModelVersion name."""
    if "://" in value or Path(value).expanduser().exists():
        return {"uri": _file_uri(value, "--base-model", local)}
    if "/" in value:
        return {"hub": {"id": value}}
    return {"modelVersion": {"name": value}}


def from_flags(
    *,
    name: str | None,
    base: str,
    dataset: str,
    local: bool,
    defaults: dict[str, Any],
    fmt: str | None = None,
    method: str | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    learning_rate: str | None = None,
    batch_size: int | None = None,
    max_seq_length: int | None = None,
    eval_split: str | None = None,
    model: str | None = None,
    storage: str | None = None,
    merge: bool | None = None,
    country: str | None = None,
    region: str | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """The FineTuneJob the flags describe; unset flags keep the schema's defaults."""
    data_uri = _file_uri(dataset, "--dataset", local)
    model = model or _slug(Path(data_uri.rsplit("/", 1)[-1]).stem or "model")
    name = name or f"{model}-{secrets.token_hex(3)[:5]}"
    spec: dict[str, Any] = {
        "baseModel": base_model(base, local),
        "dataset": _drop_none(
            {
                "uri": data_uri,
                "format": fmt,
                "maxSeqLength": max_seq_length,
                "evalSplit": eval_split,
            }
        ),
        "method": _drop_none({"type": method}),
        "hyperparameters": _drop_none(
            {
                "epochs": epochs,
                "maxSteps": max_steps,
                "learningRate": learning_rate,
                "batchSize": batch_size,
            }
        ),
        "output": _drop_none(
            {"model": model, "storage": storage or defaults.get("storage"), "merge": merge}
        ),
        "carbon": _drop_none(
            {
                "country": country or defaults.get("country"),
                "region": region or defaults.get("region"),
            }
        ),
    }
    if defaults.get("image"):
        spec["image"] = defaults["image"]
    metadata: dict[str, Any] = {"name": name}
    if experiment:
        metadata["labels"] = {"modelgarden.dev/experiment": experiment}
    return {"apiVersion": API, "kind": "FineTuneJob", "metadata": metadata, "spec": spec}


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}
