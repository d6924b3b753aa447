"""History of a job (the trainer's history.jsonl) and of a deployment (the meters' history
files), read from files or from Prometheus ``query_range``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model_garden.api.finetunejob import Output
from model_garden.operator.storage import join_uri

from . import models

JOB_HISTORY = "history.jsonl"
"""The trainer's file, beside its outputs (model_garden.training.progress writes it)."""
ARTIFACTS_CLAIM = str(Output.model_fields["storage"].default).removeprefix("pvc://")
MAX_POINTS = 5000


def meter_history_name(namespace: str, name: str) -> str:
    """The meter's history file name, beside its default state file ``meter-<ns>-<name>.json``."""
    return f"meter-{namespace}-{name}.history.jsonl"


def job_output_uri(ftj: dict[str, Any], version_name: str | None) -> str | None:
    """The output folder URI of the job's run (``<storage>/<ns>/<model>/v<N>``), from the
    ModelVersion name it makes (status.modelVersion, else its Job's label)."""
    version_name = (ftj.get("status") or {}).get("modelVersion") or version_name
    if not version_name:
        return None
    model, sep, number = str(version_name).rpartition("-v")
    if not sep or not number.isdigit():
        return None
    spec = ftj.get("spec") or {}
    storage = (spec.get("output") or {}).get("storage") or Output.model_fields["storage"].default
    ns = (ftj.get("metadata") or {}).get("namespace") or "default"
    return join_uri(str(storage), str(ns), model, f"v{number}")


def read_jsonl(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every JSON object line of the files (a torn last line, being written, is skipped)."""
    out: list[dict[str, Any]] = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    item = json.loads(line)
                    if isinstance(item, dict):
                        out.append(item)
    return out


def _thin(points: list[Any]) -> list[Any]:
    """At most MAX_POINTS, evenly spaced, the last one kept."""
    if len(points) <= MAX_POINTS:
        return points
    stride = len(points) / MAX_POINTS
    return [points[int(i * stride)] for i in range(MAX_POINTS - 1)] + [points[-1]]


def job_points(lines: list[dict[str, Any]]) -> list[models.JobPoint]:
    """Points by step; a step logged twice (a resumed run repeats it) keeps its last line."""
    by_step: dict[int, models.JobPoint] = {}
    for line in lines:
        with contextlib.suppress(ValueError, TypeError):
            point = models.JobPoint.model_validate(line)
            by_step[point.step] = point
    return _thin([by_step[s] for s in sorted(by_step)])


def serving_points(lines: list[dict[str, Any]]) -> list[models.ServingPoint]:
    points = []
    for line in lines:
        with contextlib.suppress(ValueError, TypeError):
            points.append(models.ServingPoint.model_validate(line))
    return _thin(sorted(points, key=lambda p: p.time))


# --- Prometheus ---------------------------------------------------------------------------------

TRAINING_SERIES = {
    "loss": "model_garden_training_loss",
    "evalLoss": "model_garden_training_eval_loss",
    "learningRate": "model_garden_training_learning_rate",
    "tokensPerSecond": "model_garden_training_tokens_per_second",
    "step": "model_garden_training_step",
    "epoch": "model_garden_training_epoch",
}
SERVING_SERIES = {  # {sel}: the deployment's label selector
    "energyKwh": "model_garden_serving_energy_joules_total{sel} / 3.6e6",
    "emissionsKg": "model_garden_serving_emissions_grams_total{sel} / 1000",
    "tokens": "model_garden_serving_tokens_total{sel}",
    "tokensPerSecond": "rate(model_garden_serving_tokens_total{sel}[5m])",
    "joulesPerToken": "model_garden_serving_joules_per_token{sel}",
    "gramsPer1kTokens": "model_garden_serving_grams_per_1k_tokens{sel}",
}


def _query_range(url: str, query: str, start: float, end: float, step: float) -> dict[float, float]:
    import httpx

    reply = httpx.get(
        f"{url.rstrip('/')}/api/v1/query_range",
        params={"query": f"sum({query})", "start": start, "end": end, "step": step},
        timeout=10.0,
    )
    reply.raise_for_status()
    out: dict[float, float] = {}
    for series in reply.json().get("data", {}).get("result", []):
        for ts, value in series.get("values", []):
            with contextlib.suppress(ValueError):
                out[float(ts)] = float(value)
    return out


def _window(start_time: Any) -> tuple[float, float, float]:
    from .summaries import parse_time

    end = datetime.now(UTC).timestamp()
    began = parse_time(start_time)
    start = began.timestamp() if began else end - 86400
    step = max(1.0, (end - start) / 1000)  # at most ~1000 points a series
    return start, end, step


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def prometheus_job(url: str, ftj: dict[str, Any]) -> list[models.JobPoint]:
    meta = ftj.get("metadata") or {}
    sel = f'{{job="{meta.get("name")}",namespace="{meta.get("namespace") or "default"}"}}'
    start, end, step = _window(meta.get("creationTimestamp"))
    columns = {k: _query_range(url, q + sel, start, end, step) for k, q in TRAINING_SERIES.items()}
    points = []
    for ts in sorted(columns["step"]):
        row: dict[str, Any] = {"time": _iso(ts), "step": int(columns["step"][ts])}
        row |= {k: col.get(ts) for k, col in columns.items() if k != "step"}
        points.append(models.JobPoint.model_validate(row))
    return job_points([p.model_dump(by_alias=True) for p in points])


def prometheus_deployment(url: str, idep: dict[str, Any]) -> list[models.ServingPoint]:
    meta = idep.get("metadata") or {}
    sel = f'{{deployment="{meta.get("name")}",namespace="{meta.get("namespace") or "default"}"}}'
    start, end, step = _window(meta.get("creationTimestamp"))
    columns = {
        k: _query_range(url, q.replace("{sel}", sel), start, end, step)
        for k, q in SERVING_SERIES.items()
    }
    points = []
    for ts in sorted(columns["energyKwh"]):
        row: dict[str, Any] = {k: col.get(ts) for k, col in columns.items()}
        row["time"] = _iso(ts)
        row["energyKwh"] = row["energyKwh"] or 0.0
        row["emissionsKg"] = row["emissionsKg"] or 0.0
        row["tokens"] = int(row["tokens"] or 0)
        points.append(models.ServingPoint.model_validate(row))
    return points
