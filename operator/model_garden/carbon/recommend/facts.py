"""The facts the rules read, from the objects as the API server (or the local store) holds them
and from what a caller adds: a job's eval-loss history, GPU utilisation."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion

from .model import DEPLOYMENT, JOB, DeploymentFacts, EvalPoint, ForecastPoint, JobFacts
from .rules import parameters_from_name


def eval_points(lines: Iterable[Mapping[str, Any]]) -> tuple[EvalPoint, ...]:
    """The evaluations in a trainer's history lines (``{"step", "evalLoss", …}``, as
    history.jsonl or the read API's job history carry them).

    Each step line repeats the last eval loss, so an evaluation is a step whose eval loss differs
    from the one before (a step logged twice keeps its last line). Two evaluations in a row with
    the very same loss count as one: the rule then waits longer, never less."""
    by_step: dict[int, float | None] = {}
    for line in lines:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            loss = line.get("evalLoss", line.get("eval_loss"))
            by_step[int(line["step"])] = None if loss is None else float(loss)
    out: list[EvalPoint] = []
    last: float | None = None
    for step in sorted(by_step):
        loss = by_step[step]
        if loss is not None and loss != last:
            out.append(EvalPoint(step, loss))
        last = loss if loss is not None else last
    return tuple(out)


def candidate_regions(values: Iterable[str], lookup: Callable[[str], float]) -> dict[str, float]:
    """Candidate regions and their intensities: ``CODE=G`` as given (g CO2e/kWh), a bare ``CODE``
    at ``lookup(CODE)`` (the grid table's figure); ValueError names a value that is neither."""
    out: dict[str, float] = {}
    for value in values:
        code, sep, grams = value.partition("=")
        code = code.strip()
        if not code:
            raise ValueError(f"{value!r}: CODE or CODE=G")
        if not sep:
            out[code] = lookup(code)
            continue
        try:
            out[code] = float(grams)
        except ValueError:
            raise ValueError(f"{value!r}: CODE=G with G in g CO2e/kWh") from None
        if not out[code] >= 0:
            raise ValueError(f"{value!r}: CODE=G with G >= 0")
    return out


def forecast_points(doc: Any) -> list[ForecastPoint]:
    """Forecast points from a list of ``{"time", "gPerKwh"}`` or from an Electricity Maps-shaped
    ``{"forecast": [{"datetime", "carbonIntensity"}]}``, sorted by time; ValueError names the
    point that is not one."""
    from datetime import datetime

    items = doc.get("forecast") if isinstance(doc, Mapping) else doc
    if not isinstance(items, list):
        raise ValueError("a forecast is a list of {time, gPerKwh} (or {forecast: [...]})")
    out = []
    for index, item in enumerate(items):
        try:
            when = str(item.get("time") or item["datetime"]).replace("Z", "+00:00")
            value = item.get("gPerKwh", item.get("carbonIntensity"))
            point = ForecastPoint(datetime.fromisoformat(when), float(value))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"forecast point {index}: {item!r} is not {{time, gPerKwh}}") from exc
        if point.time.tzinfo is None or point.g_per_kwh < 0:
            raise ValueError(f"forecast point {index}: a time with its zone, a value >= 0")
        out.append(point)
    return sorted(out, key=lambda p: p.time)


def _parse(bodies: Iterable[dict[str, Any]], model: Any) -> tuple[list[Any], int]:
    from pydantic import ValidationError

    parsed, skipped = [], 0
    for body in bodies:
        try:
            parsed.append(model.model_validate(body))
        except ValidationError:
            skipped += 1
    return parsed, skipped


def _base_model_name(ftj: FineTuneJob, versions: Mapping[str, ModelVersion]) -> str | None:
    base = ftj.spec.base_model
    if base.hub is not None:
        return base.hub.id
    if base.model_version is not None:
        mv = versions.get(base.model_version.name)
        return mv.spec.artifact.base_model if mv else None
    return str(base.uri).rstrip("/") if base.uri else None


def job_facts(
    ftj: FineTuneJob,
    versions: Mapping[str, ModelVersion] | None = None,
    *,
    history: Sequence[Mapping[str, Any]] | None = None,
    gpu_utilisation: float | None = None,
    parameters: int | None = None,
) -> JobFacts | None:
    """One job's facts (None before it has carbon figures); ``history``: its trainer history
    lines (None: not known)."""
    carbon = ftj.status.carbon
    if carbon is None or carbon.energy_kwh <= 0:
        return None
    base = _base_model_name(ftj, versions or {})
    progress = ftj.status.progress
    start, end = ftj.status.start_time, ftj.status.completion_time
    return JobFacts(
        name=ftj.metadata.name,
        namespace=ftj.metadata.namespace,
        method=str(ftj.spec.method.type),
        base_model=base,
        parameters=parameters if parameters is not None else parameters_from_name(base),
        energy_kwh=carbon.energy_kwh,
        gpu_energy_kwh=carbon.gpu_energy_kwh,
        emissions_kg=carbon.emissions_kg,
        intensity_g_per_kwh=carbon.grid_intensity_g_per_kwh,
        region=carbon.region or carbon.country,
        steps=progress.step if progress else 0,
        duration_seconds=(end - start).total_seconds() if start and end else None,
        gpus=ftj.spec.resources.gpus,
        evals=eval_points(history) if history is not None else None,
        gpu_utilisation=gpu_utilisation,
    )


def deployment_facts(
    idep: InferenceDeployment, *, gpu_utilisation: float | None = None
) -> DeploymentFacts | None:
    """One deployment's facts (None before its meters reported)."""
    carbon = idep.status.carbon
    if carbon is None or carbon.energy_kwh <= 0:
        return None
    replicas = max(idep.spec.replicas, idep.status.replicas)  # wanted, or still running
    return DeploymentFacts(
        name=idep.metadata.name,
        namespace=idep.metadata.namespace,
        energy_kwh=carbon.energy_kwh,
        idle_energy_kwh=carbon.idle_energy_kwh,
        idle_emissions_kg=carbon.idle_emissions_kg,
        emissions_kg=carbon.emissions_kg,
        tokens=carbon.tokens,
        intensity_g_per_kwh=carbon.grid_intensity_g_per_kwh,
        region=carbon.region,
        replicas=replicas,
        gpus=idep.spec.resources.gpus * replicas,
        gpu_utilisation=gpu_utilisation,
    )


def key(kind: str, name: str, namespace: str | None = None) -> str:
    """How inputs name an object: ``FineTuneJob/name`` (``namespace/FineTuneJob/name`` across
    namespaces)."""
    return f"{namespace}/{kind}/{name}" if namespace else f"{kind}/{name}"


def _lookup(values: Mapping[str, Any], kind: str, name: str, namespace: str | None) -> Any:
    found = values.get(key(kind, name, namespace))
    return found if found is not None else values.get(key(kind, name))


def from_objects(
    jobs: Iterable[dict[str, Any]],
    versions: Iterable[dict[str, Any]],
    deployments: Iterable[dict[str, Any]],
    *,
    histories: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    utilisation: Mapping[str, float] | None = None,
) -> tuple[list[JobFacts], list[DeploymentFacts], int]:
    """The facts of every job and deployment with carbon figures, and how many objects did not
    parse (left out). ``histories`` and ``utilisation`` are keyed by :func:`key`."""
    ftjs, skipped_j = _parse(jobs, FineTuneJob)
    mvs, skipped_v = _parse(versions, ModelVersion)
    ideps, skipped_d = _parse(deployments, InferenceDeployment)
    by_version = {mv.metadata.name: mv for mv in mvs}
    histories, utilisation = histories or {}, utilisation or {}
    job_out = []
    for ftj in ftjs:
        name, ns = ftj.metadata.name, ftj.metadata.namespace
        facts = job_facts(
            ftj,
            by_version,
            history=_lookup(histories, JOB, name, ns),
            gpu_utilisation=_lookup(utilisation, JOB, name, ns),
        )
        if facts is not None:
            job_out.append(facts)
    dep_out = []
    for idep in ideps:
        name, ns = idep.metadata.name, idep.metadata.namespace
        dep = deployment_facts(idep, gpu_utilisation=_lookup(utilisation, DEPLOYMENT, name, ns))
        if dep is not None:
            dep_out.append(dep)
    return job_out, dep_out, skipped_j + skipped_v + skipped_d
