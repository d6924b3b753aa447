"""Overview, experiments and carbon summaries: pure functions over the objects' dicts.

Carbon figures come from :func:`model_garden.carbon.report.records` (every operation counted
once, as ``mg carbon`` counts them); this module only tags each record with its namespace and a
day, and groups.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from model_garden.carbon import report

from . import models
from .query import condition_true, experiment_of, meta, spec, status

GROUPINGS = ("model", "version", "experiment", "namespace", "region", "method", "kind")


@dataclass(frozen=True)
class Tagged:
    record: report.Record
    namespace: str
    day: date


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _by_namespace(objs: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for obj in objs:
        out[str(meta(obj).get("namespace") or "default")].append(obj)
    return out


def _training_day(job: dict[str, Any] | None, version: dict[str, Any] | None, today: date) -> date:
    for obj, fields in ((job, ("completionTime", "startTime")), (version, ())):
        if obj is None:
            continue
        for name in fields:
            when = parse_time(status(obj).get(name))
            if when:
                return when.date()
        when = parse_time(meta(obj).get("creationTimestamp"))
        if when:
            return when.date()
    return today


def tagged_records(
    jobs: list[dict[str, Any]],
    versions: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    today: date | None = None,
) -> list[Tagged]:
    """Every operation once, with its namespace and the day it is counted on: a training run on
    the day it ended (else started); serving totals, which the status keeps cumulative, on
    ``today``."""
    today = today or datetime.now(UTC).date()
    j, v, d = _by_namespace(jobs), _by_namespace(versions), _by_namespace(deployments)
    out: list[Tagged] = []
    for ns in sorted(set(j) | set(v) | set(d)):
        recs, _skipped = report.records(j.get(ns, []), v.get(ns, []), d.get(ns, []))
        job_by_name = {meta(o).get("name"): o for o in j.get(ns, [])}
        mv_by_name = {meta(o).get("name"): o for o in v.get(ns, [])}
        for rec in recs:
            if rec.operation == report.TRAINING:
                day = _training_day(job_by_name.get(rec.job), mv_by_name.get(rec.version), today)
            else:
                day = today
            out.append(Tagged(rec, ns, day))
    return out


def _key(tagged: Tagged, by: str) -> str | None:
    rec = tagged.record
    if by == "namespace":
        return tagged.namespace
    if by == "kind":
        return rec.operation
    value = getattr(rec, by)
    return str(value) if value is not None else None


def summary(items: list[Tagged], by: str) -> models.CarbonSummary:
    """Totals per value of ``by``; measuredShare is the share of the emissions that were measured."""
    groups: dict[str | None, list[Tagged]] = defaultdict(list)
    for tagged in items:
        groups[_key(tagged, by)].append(tagged)
    rows = []
    for key, members in groups.items():
        kg = math.fsum(t.record.emissions_kg for t in members)
        measured = math.fsum(
            t.record.emissions_kg for t in members if t.record.method == "measured"
        )
        if kg > 0:
            share = measured / kg
        else:
            share = sum(t.record.method == "measured" for t in members) / len(members)
        rows.append(
            models.SummaryRow(
                key=key,
                energy_kwh=math.fsum(t.record.energy_kwh for t in members),
                emissions_kg=kg,
                operations=len(members),
                measured_share=share,
            )
        )
    rows.sort(key=lambda r: (r.key is None, -r.emissions_kg, r.key or ""))
    return models.CarbonSummary(by=by, rows=rows)


def per_model(items: list[Tagged]) -> models.ModelCarbonList:
    """Whole life per model: training plus serving, and grams per 1k tokens served."""
    groups: dict[tuple[str, str], list[report.Record]] = defaultdict(list)
    for tagged in items:
        if tagged.record.model:
            groups[(tagged.namespace, tagged.record.model)].append(tagged.record)
    out = []
    for (ns, model), recs in sorted(groups.items()):
        training = math.fsum(r.emissions_kg for r in recs if r.operation == report.TRAINING)
        serving = math.fsum(r.emissions_kg for r in recs if r.operation == report.SERVING)
        tokens = sum(r.tokens for r in recs)
        out.append(
            models.ModelCarbon(
                model=model,
                namespace=ns,
                training_kg=training,
                serving_kg=serving,
                total_kg=training + serving,
                tokens=tokens,
                grams_per_1k_tokens=(training + serving) * 1e6 / tokens if tokens else None,
            )
        )
    out.sort(key=lambda m: -m.total_kg)
    return models.ModelCarbonList(items=out)


def timeline(items: list[Tagged], days: int, today: date | None = None) -> models.Timeline:
    """One point per day of the last ``days`` days (today included), empty days as zeros."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    sums: dict[date, list[float]] = {
        first + timedelta(days=i): [0.0, 0.0, 0.0] for i in range(days)
    }
    for tagged in items:
        if tagged.day not in sums:
            continue
        row = sums[tagged.day]
        row[0 if tagged.record.operation == report.TRAINING else 1] += tagged.record.emissions_kg
        row[2] += tagged.record.energy_kwh
    return models.Timeline(
        points=[
            models.TimelinePoint(day=d.isoformat(), training=t, serving=s, energy_kwh=e)
            for d, (t, s, e) in sorted(sums.items())
        ]
    )


class Memo:
    """Values computed for keys that name the source's generation (and the parameters): the
    summaries over thousands of objects are computed once per change, not once per request."""

    def __init__(self, size: int = 64) -> None:
        self._lock = threading.Lock()
        self._size = size
        self._values: dict[Any, Any] = {}

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:  # concurrent requests wait for one computation instead of repeating it
            if key not in self._values:
                if len(self._values) >= self._size:
                    self._values.clear()
                self._values[key] = compute()
            return self._values[key]


def overview(
    jobs: list[dict[str, Any]],
    versions: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
    tagged: list[Tagged],
    parse_job: Callable[[dict[str, Any]], Any],
    today: date | None = None,
) -> models.Overview:
    """Counts, the last 7 days' carbon by region, and the 5 newest jobs."""
    today = today or datetime.now(UTC).date()
    week = [t for t in tagged if today - t.day < timedelta(days=7)]
    regions: dict[str | None, list[report.Record]] = defaultdict(list)
    for item in week:
        regions[item.record.region].append(item.record)
    by_region = [
        models.RegionRow(
            region=region,
            emissions_kg=math.fsum(r.emissions_kg for r in recs),
            energy_kwh=math.fsum(r.energy_kwh for r in recs),
        )
        for region, recs in regions.items()
    ]
    by_region.sort(key=lambda r: -r.emissions_kg)
    newest = sorted(jobs, key=lambda o: str(meta(o).get("creationTimestamp") or ""), reverse=True)
    recent = []
    for body in newest:
        parsed = parse_job(body)
        if parsed is not None:
            recent.append(parsed)
        if len(recent) == 5:
            break
    return models.Overview(
        running_jobs=sum(condition_true(o, "Running") for o in jobs),
        serving_deployments=sum(condition_true(o, "Ready") for o in deployments),
        versions=len(versions),
        emissions_this_week_kg=math.fsum(t.record.emissions_kg for t in week),
        energy_this_week_kwh=math.fsum(t.record.energy_kwh for t in week),
        by_region=by_region,
        recent_jobs=recent,
    )


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def run_status(job: dict[str, Any]) -> str:
    for type_ in ("Succeeded", "Failed", "Running", "Suspended", "Queued"):
        if condition_true(job, type_):
            return type_
    return "Pending"


def run_of(job: dict[str, Any], versions: dict[tuple[str, str], dict[str, Any]]) -> models.Run:
    s, st, m = spec(job), status(job), meta(job)
    hp = s.get("hyperparameters") or {}
    method = s.get("method") or {}
    lora = method.get("lora") or {}
    progress = st.get("progress") or {}
    carbon = st.get("carbon") or {}
    ns = str(m.get("namespace") or "default")
    mv = versions.get((ns, str(st.get("modelVersion") or "")))
    metrics = spec(mv).get("metrics") or {} if mv else {}
    start, end = parse_time(st.get("startTime")), parse_time(st.get("completionTime"))
    return models.Run(
        namespace=ns,
        job=str(m.get("name")),
        model=str((s.get("output") or {}).get("model") or m.get("name")),
        status=run_status(job),
        method=str(method.get("type") or "lora"),
        hyperparameters={
            "epochs": hp.get("epochs", 1),
            "maxSteps": hp.get("maxSteps"),
            "learningRate": _float(hp.get("learningRate", "2e-4")),
            "batchSize": hp.get("batchSize", 4),
            "loraR": lora.get("rank", 16),
            "loraAlpha": lora.get("alpha", 32),
        },
        final_loss=_float(metrics.get("trainLoss")) or _float(progress.get("loss")),
        final_eval_loss=_float(metrics.get("evalLoss")) or _float(progress.get("evalLoss")),
        duration_seconds=(end - start).total_seconds() if start and end else None,
        energy_kwh=_float(carbon.get("energyKwh")),
        emissions_kg=_float(carbon.get("emissionsKg")),
    )


def experiments(
    jobs: list[dict[str, Any]], versions: list[dict[str, Any]]
) -> models.ExperimentList:
    """FineTuneJobs grouped by their experiment label (jobs without one are left out)."""
    by_key = {
        (str(meta(v).get("namespace") or "default"), str(meta(v).get("name"))): v for v in versions
    }
    groups: dict[str, list[models.Run]] = defaultdict(list)
    for job in sorted(jobs, key=lambda o: str(meta(o).get("creationTimestamp") or "")):
        name = experiment_of(job)
        if name:
            groups[name].append(run_of(job, by_key))
    return models.ExperimentList(
        items=[models.Experiment(name=n, runs=runs) for n, runs in sorted(groups.items())]
    )
