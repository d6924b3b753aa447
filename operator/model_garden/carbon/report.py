"""Carbon report: the emissions of every operation in the objects' status, grouped as asked.

Pure functions over the three kinds (no client, no I/O): :func:`records` turns FineTuneJobs,
ModelVersions and InferenceDeployments into one :class:`Record` per operation, counted once:

- a training run: the FineTuneJob's ``status.carbon``; once the job is deleted, what its
  ModelVersion kept (``spec.trainingCarbon``);
- serving: each InferenceDeployment's ``status.carbon.byModelVersion`` share (what it served of
  each version), plus what its total holds beyond those shares; once the deployment is deleted,
  what each ModelVersion kept of it (``status.servingByDeployment``).

:func:`group` sums records by one dimension (job, version, model, deployment, experiment,
region, operation) with ``math.fsum``; the groups partition the records, so they add up to
:func:`total`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.labels import LABEL_EXPERIMENT

DIMENSIONS = ("job", "version", "model", "deployment", "experiment", "region", "operation")
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


def _serving(
    idep: InferenceDeployment,
    by_version: dict[str, ModelVersion],
    version: str | None,
    kwh: float,
    kg: float,
    tokens: int,
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
) -> tuple[list[Record], int]:
    """Every operation once, from the objects as the API server holds them; and how many
    objects did not parse (left out)."""
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
                )
            )
        # what the totals hold beyond the shares (a reading before any version was served)
        rest_kwh = carbon.energy_kwh - math.fsum(s.energy_kwh for s in shares)
        rest_kg = carbon.emissions_kg - math.fsum(s.emissions_kg for s in shares)
        rest_tokens = carbon.tokens - sum(s.tokens for s in shares)
        if rest_kwh > 0 or rest_kg > 0 or rest_tokens > 0:
            rest = (max(rest_kwh, 0.0), max(rest_kg, 0.0), max(rest_tokens, 0))
            out.append(_serving(idep, by_version, None, *rest))
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


def group(items: Sequence[Record], by: str) -> list[Row]:
    """One row per value of ``by`` (None last: not known), most emissions first."""
    if by not in DIMENSIONS:
        raise ValueError(f"cannot group by {by!r}: one of {', '.join(DIMENSIONS)}")
    members: dict[str | None, list[Record]] = {}
    for record in items:
        members.setdefault(getattr(record, by), []).append(record)
    rows = [_sum(key, group) for key, group in members.items()]
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
