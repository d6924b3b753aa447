"""Carbon report: the emissions of every operation in the objects' status, grouped as asked.

Pure functions over the three kinds (no client, no I/O): :func:`records` turns FineTuneJobs,
ModelVersions and InferenceDeployments into one :class:`Record` per operation, counted once:

- a training run: the FineTuneJob's ``status.carbon``; once the job is deleted, what its
  ModelVersion kept (``spec.trainingCarbon``);
- serving: each InferenceDeployment's ``status.carbon.byModelVersion`` share (what it served of
  each version), plus what its total holds beyond those shares; once the deployment is deleted,
  what each ModelVersion kept of it (``status.servingByDeployment``).

:func:`group` sums records by one dimension (job, version, model, deployment, experiment,
region, operation, period) with ``math.fsum``; the groups partition the records, so they add up
to :func:`total`.

Periods (UTC; ISO weeks): a record falls in the period of its end time (``Record.end``): a job's
completion (a running job's: the report's time), a version's creation for what the version
kept of a deleted job and for its verification, and the report's time for a live deployment's
serving (its status is the total as of the last poll). Serving is cumulative per deployment, so
:func:`split_serving` splits it by period where the deployment's history (the meters' history
files, or Prometheus) allows; figures with no time (the CLI's exports, evaluations and batches,
a deleted deployment's serving) have no period.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.labels import LABEL_EXPERIMENT

DIMENSIONS = (
    "job",
    "version",
    "model",
    "deployment",
    "experiment",
    "region",
    "operation",
    "period",
)
PERIODS = ("day", "week", "month")
TRAINING = "training"
SERVING = "serving"


@dataclass(frozen=True)
class Record:
    """One operation's energy and emissions, and what it belongs to (None: not known)."""

    operation: str
    energy_kwh: float
    emissions_kg: float
    tokens: int = 0
    job: str | None = None
    version: str | None = None
    model: str | None = None
    deployment: str | None = None
    experiment: str | None = None
    region: str | None = None
    method: str | None = None
    end: datetime | None = None
    """When the figure ends (UTC), for its period; None: not known."""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["end"] = _iso(self.end)
        return out


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z") if when else None


def _utc(when: datetime | None) -> datetime | None:
    """Aware UTC (a naive time is taken as UTC, as the API server writes them)."""
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def period_of(when: datetime | None, period: str) -> str | None:
    """``2026-11-27`` (day), ``2026-W48`` (ISO week), ``2026-11`` (month), in UTC."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}: one of {', '.join(PERIODS)}")
    at = _utc(when)
    if at is None:
        return None
    if period == "day":
        return at.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    return at.strftime("%Y-%m")


def parse_when(text: str, field_name: str) -> datetime:
    """An RFC 3339 time or a YYYY-MM-DD date (midnight UTC); ``field_name`` names the option in
    the error."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{field_name}: {text!r} is not an RFC 3339 time or a YYYY-MM-DD date"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{field_name}: {text!r} has no time zone (add Z or +HH:MM)")
    return parsed.astimezone(UTC)


def within(items: Iterable[Record], since: datetime | None, until: datetime | None) -> list[Record]:
    """The records that end in [since, until); with a bound, those with no time are left out."""
    if since is None and until is None:
        return list(items)
    out = []
    for record in items:
        end = _utc(record.end)
        if end is None:
            continue
        if (since is None or end >= since) and (until is None or end < until):
            out.append(record)
    return out


@dataclass(frozen=True)
class HistoryPoint:
    """One line of a deployment's history: its cumulative totals at a time."""

    time: datetime
    energy_kwh: float
    emissions_kg: float
    tokens: int


def split_serving(
    items: Sequence[Record],
    histories: Mapping[str, Sequence[Sequence[HistoryPoint]]],
    period: str,
) -> list[Record]:
    """Each live deployment's serving record split into one record per ``period``, in the
    proportions its history grew in them (energy by energy, emissions by emissions, tokens by
    tokens), so the pieces add up to the record. A deployment's history is one series of
    cumulative totals per meter (a pod, or a meter's restart from zero). Only a deployment with one serving record
    (one version served) and a history is split: the shares of several versions in a period
    are not known. A piece ends at its period's last history point."""
    by_deployment: dict[str, list[Record]] = {}
    for record in items:
        if record.operation == SERVING and record.deployment and record.end is not None:
            by_deployment.setdefault(record.deployment, []).append(record)
    out: list[Record] = []
    for record in items:
        name = record.deployment or ""
        series = [s for s in histories.get(name) or [] if s]
        if len(by_deployment.get(name, [])) != 1 or record not in by_deployment[name] or not series:
            out.append(record)
            continue
        out.extend(_pieces(record, series, period))
    return out


def _pieces(record: Record, series: Sequence[Sequence[HistoryPoint]], period: str) -> list[Record]:
    grown: dict[str, list[float]] = {}  # period -> [kWh, kg, tokens] grown in it
    ends: dict[str, datetime] = {}
    for points in series:
        last = HistoryPoint(points[0].time, 0.0, 0.0, 0)
        for point in sorted(points, key=lambda p: p.time):
            key = period_of(point.time, period) or ""
            d = grown.setdefault(key, [0.0, 0.0, 0.0])
            pairs = (
                (point.energy_kwh, last.energy_kwh),
                (point.emissions_kg, last.emissions_kg),
                (float(point.tokens), float(last.tokens)),
            )
            for i, (now, before) in enumerate(pairs):
                d[i] += now - before if now >= before else now  # restarted from zero: all new
            ends[key] = max(ends.get(key, point.time), point.time)
            last = point
    totals = [math.fsum(g[i] for g in grown.values()) for i in range(3)]
    if not any(totals):
        return [record]
    keys = sorted(grown)
    pieces = []
    left_kwh, left_kg, left_tokens = record.energy_kwh, record.emissions_kg, record.tokens
    for n, key in enumerate(keys):
        share = [grown[key][i] / totals[i] if totals[i] else 0.0 for i in range(3)]
        if n == len(keys) - 1:  # the last piece takes the rest: the pieces add up exactly
            kwh, kg, tokens = left_kwh, left_kg, left_tokens
        else:
            kwh = record.energy_kwh * share[0]
            kg = record.emissions_kg * share[1]
            tokens = round(record.tokens * share[2])
        left_kwh, left_kg, left_tokens = left_kwh - kwh, left_kg - kg, left_tokens - tokens
        pieces.append(
            replace(record, energy_kwh=kwh, emissions_kg=kg, tokens=tokens, end=ends[key])
        )
    return pieces


@dataclass
class Row:
    """The sums of one group."""

    key: str | None
    operations: int = 0
    energy_kwh: float = 0.0
    emissions_kg: float = 0.0
    training_kg: float = 0.0
    serving_kg: float = 0.0
    tokens: int = 0
    methods: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _model_of(version: str) -> str:
    model, sep, _ = version.rpartition("-v")
    return model if sep else version


def _region(country: str | None, region: str | None) -> str | None:
    if country and region and region != country:
        return f"{country}/{region}"
    return region or country


def _created(meta: Any) -> datetime | None:
    """metadata.creationTimestamp (carried, not modelled)."""
    text = (meta.model_extra or {}).get("creationTimestamp")
    if not text:
        return None
    try:
        return _utc(datetime.fromisoformat(str(text).replace("Z", "+00:00")))
    except ValueError:
        return None


def _serving(
    idep: InferenceDeployment,
    by_version: dict[str, ModelVersion],
    version: str | None,
    kwh: float,
    kg: float,
    tokens: int,
    now: datetime | None = None,
) -> Record:
    """What a live deployment served of one version (None: not attributed to one)."""
    mv = by_version.get(version or "")
    carbon = idep.status.carbon
    return Record(
        operation=SERVING,
        energy_kwh=kwh,
        emissions_kg=kg,
        tokens=tokens,
        job=mv.spec.source.fine_tune_job if mv else None,
        version=version,
        model=(mv.spec.model if mv else _model_of(version)) if version else None,
        deployment=idep.metadata.name,
        experiment=idep.metadata.labels.get(LABEL_EXPERIMENT)
        or (mv.metadata.labels.get(LABEL_EXPERIMENT) if mv else None),
        region=carbon.region if carbon else None,
        method=str(carbon.method) if carbon else None,
        end=now,
    )


def _parse(bodies: Iterable[dict[str, Any]], model: Any) -> tuple[list[Any], int]:
    from pydantic import ValidationError

    parsed, skipped = [], 0
    for body in bodies:
        try:
            parsed.append(model.model_validate(body))
        except ValidationError:
            skipped += 1
    return parsed, skipped


def records(
    jobs: Iterable[dict[str, Any]],
    versions: Iterable[dict[str, Any]],
    deployments: Iterable[dict[str, Any]],
    now: datetime | None = None,
) -> tuple[list[Record], int]:
    """Every operation once, from the objects as the API server holds them; and how many
    objects did not parse (left out). ``now`` (the report's time) ends what is still
    counting: a running job, a live deployment's serving."""
    ftjs, skipped_j = _parse(jobs, FineTuneJob)
    mvs, skipped_v = _parse(versions, ModelVersion)
    ideps, skipped_d = _parse(deployments, InferenceDeployment)
    by_version = {mv.metadata.name: mv for mv in mvs}
    out: list[Record] = []

    job_names = set()
    for ftj in ftjs:
        job_names.add(ftj.metadata.name)
        carbon = ftj.status.carbon
        if carbon is None:
            continue
        version = ftj.status.model_version
        mv = by_version.get(version or "")
        out.append(
            Record(
                operation=TRAINING,
                energy_kwh=carbon.energy_kwh,
                emissions_kg=carbon.emissions_kg,
                job=ftj.metadata.name,
                version=version,
                model=mv.spec.model if mv else ftj.spec.output.model,
                experiment=ftj.metadata.labels.get(LABEL_EXPERIMENT),
                region=_region(carbon.country, carbon.region),
                method=str(carbon.method),
                end=_utc(ftj.status.completion_time) or now,
            )
        )
    for mv in mvs:
        spent = mv.spec.training_carbon
        job = mv.spec.source.fine_tune_job
        if spent is None or (job and job in job_names):
            continue
        out.append(
            Record(
                operation=TRAINING,
                energy_kwh=float(spent.energy_kwh),
                emissions_kg=float(spent.emissions_kg),
                job=job,
                version=mv.metadata.name,
                model=mv.spec.model,
                experiment=mv.metadata.labels.get(LABEL_EXPERIMENT),
                method=str(spent.method),
                end=_created(mv.metadata),
            )
        )

    live_uids = set()
    for idep in ideps:
        live_uids.add(idep.metadata.uid)
        carbon = idep.status.carbon
        if carbon is None:
            continue
        shares = carbon.by_model_version
        for share in shares:
            out.append(
                _serving(
                    idep,
                    by_version,
                    share.model_version,
                    share.energy_kwh,
                    share.emissions_kg,
                    share.tokens,
                    now,
                )
            )
        # what the totals hold beyond the shares (a reading before any version was served)
        rest_kwh = carbon.energy_kwh - math.fsum(s.energy_kwh for s in shares)
        rest_kg = carbon.emissions_kg - math.fsum(s.emissions_kg for s in shares)
        rest_tokens = carbon.tokens - sum(s.tokens for s in shares)
        if rest_kwh > 0 or rest_kg > 0 or rest_tokens > 0:
            rest = (max(rest_kwh, 0.0), max(rest_kg, 0.0), max(rest_tokens, 0))
            out.append(_serving(idep, by_version, None, *rest, now))
    for mv in mvs:
        for kept in mv.status.serving_by_deployment:
            if kept.uid in live_uids:
                continue
            out.append(
                Record(
                    operation=SERVING,
                    energy_kwh=kept.energy_kwh,
                    emissions_kg=kept.emissions_kg,
                    tokens=kept.tokens,
                    job=mv.spec.source.fine_tune_job,
                    version=mv.metadata.name,
                    model=mv.spec.model,
                    deployment=kept.deployment,
                    experiment=mv.metadata.labels.get(LABEL_EXPERIMENT),
                )
            )
    for mv in mvs:  # the rest of each version's operations (training and serving are above)
        for kind, spent_on in sorted(mv.status.carbon_by_operation.items()):
            if kind in (TRAINING, SERVING):
                continue
            out.append(
                Record(
                    operation=kind,
                    energy_kwh=spent_on.energy_kwh,
                    emissions_kg=spent_on.emissions_kg,
                    job=mv.spec.source.fine_tune_job,
                    version=mv.metadata.name,
                    model=mv.spec.model,
                    experiment=mv.metadata.labels.get(LABEL_EXPERIMENT),
                    method=str(spent_on.method),
                    # verification runs when the version is made; the CLI's runs keep no time
                    end=_created(mv.metadata) if kind == "verification" else None,
                )
            )
    return out, skipped_j + skipped_v + skipped_d


def _sum(key: str | None, members: Sequence[Record]) -> Row:
    return Row(
        key=key,
        operations=len(members),
        energy_kwh=math.fsum(r.energy_kwh for r in members),
        emissions_kg=math.fsum(r.emissions_kg for r in members),
        training_kg=math.fsum(r.emissions_kg for r in members if r.operation == TRAINING),
        serving_kg=math.fsum(r.emissions_kg for r in members if r.operation == SERVING),
        tokens=sum(r.tokens for r in members),
        methods=sorted({r.method for r in members if r.method}),
    )


def group(items: Sequence[Record], by: str, period: str = "month") -> list[Row]:
    """One row per value of ``by`` (None last: not known), most emissions first; by period,
    one row per ``period`` in time order."""
    if by not in DIMENSIONS:
        raise ValueError(f"cannot group by {by!r}: one of {', '.join(DIMENSIONS)}")
    members: dict[str | None, list[Record]] = {}
    for record in items:
        key = period_of(record.end, period) if by == "period" else getattr(record, by)
        members.setdefault(key, []).append(record)
    rows = [_sum(key, group) for key, group in members.items()]
    if by == "period":
        return sorted(rows, key=lambda r: (r.key is None, r.key or ""))
    return sorted(rows, key=lambda r: (r.key is None, -r.emissions_kg, r.key or ""))


def total(items: Sequence[Record]) -> Row:
    return _sum("total", items)


def regions(country: str | None = None) -> list[dict[str, Any]]:
    """The grid intensities the tracker uses (:func:`model_garden.carbon.grid.grid_intensity`):
    every country it knows, or one; the world average stands in for any other."""
    from .grid import FALLBACK_G_PER_KWH, WORLD_AVERAGE_G_PER_KWH, codecarbon_mix, grid_intensity

    codes = (
        [country.upper()] if country else sorted(set(codecarbon_mix()) | set(FALLBACK_G_PER_KWH))
    )
    rows = []
    for code in codes:
        grid = grid_intensity(code)
        rows.append({"country": grid.country, "gPerKwh": grid.g_per_kwh, "source": grid.source})
    if not country:
        rows.append(
            {"country": "WORLD", "gPerKwh": WORLD_AVERAGE_G_PER_KWH, "source": "world average"}
        )
    return rows


def cloud_regions(provider: str | None = None) -> list[dict[str, Any]]:
    """The cloud-region table (:mod:`model_garden.carbon.regions`), all clouds or one
    (``aws``, ``gcp``, ``azure``): each row with its basis (``provider`` figure or the
    ``location-grid-average``), source and year."""
    from .regions import PROVIDERS
    from .regions import cloud_regions as table

    if provider is not None and provider.lower() not in PROVIDERS:
        raise ValueError(f"unknown cloud {provider!r}: one of {', '.join(PROVIDERS)}")
    return [
        {
            "region": row.name,
            "location": row.location,
            "country": row.country,
            "gPerKwh": row.g_per_kwh,
            "basis": row.basis,
            "source": row.source,
            "year": row.year,
        }
        for row in sorted(table().values(), key=lambda r: r.name)
        if provider is None or row.provider == provider.lower()
    ]


def region_intensity(country: str | None, region: str | None) -> dict[str, Any]:
    """What the tracker would use for this country and/or region, after overrides and the live
    provider (:func:`model_garden.carbon.grid.grid_intensity`), and why."""
    from .grid import grid_intensity

    grid = grid_intensity(country, region)
    return {
        "country": grid.country,
        "region": grid.region,
        "gPerKwh": grid.g_per_kwh,
        "kind": grid.kind,
        "source": grid.source,
        "time": grid.time,
        "detail": grid.detail,
    }
