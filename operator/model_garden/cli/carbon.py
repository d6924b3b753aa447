"""``model-garden carbon report|regions|recommend``: emissions by job, version, model, deployment,
experiment or region (from the objects' status, :mod:`model_garden.carbon.report`), the grid
intensities the tracker uses, and advice with its estimated saving
(:mod:`model_garden.carbon.recommend`)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml

from .errors import InvalidInput
from .output import OUTPUT_OPTION, figure, show
from .target import Target, must_get, target_options

FORMATS = ("table", "csv", "json")
BY = ("job", "version", "model", "deployment", "experiment", "region", "operation", "period")
FORMAT_OPTION = click.option(
    "-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True
)


def _kg(value: float) -> str:
    """kg CO2e for people: g or mg below 1 kg."""
    for unit, scale in (("kg", 1.0), ("g", 1e-3), ("mg", 1e-6)):
        if value >= scale:
            return f"{figure(value / scale)} {unit}"
    return "0" if value == 0 else f"{figure(value / 1e-9)} µg"


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for index, header in enumerate(headers):
        table.add_column(header, justify="right" if index in numeric else "left")
    for row in rows:
        table.add_row(*("-" if v is None or v == "" else str(v) for v in row))
    show(table)


@click.group()
def carbon() -> None:
    """Carbon: emissions of training and serving, and the grid intensities used.

    \b
    Example:
      mg carbon report --by model
      mg carbon regions --country FRA
      mg carbon recommend --region FRA --region SWE
    """


@carbon.command()
@click.option("--by", type=click.Choice(BY), default="version", show_default=True, help="Group by.")
@click.option(
    "-o",
    "--output",
    type=click.Choice([*FORMATS, "html"]),
    default="table",
    show_default=True,
    help="html: one self-contained page with bars (redirect it to a file).",
)
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month"]),
    default="month",
    show_default=True,
    help="With --by period: UTC days, ISO weeks or months.",
)
@click.option("--since", help="Only what ends at or after this time (RFC 3339 or YYYY-MM-DD).")
@click.option("--until", help="Only what ends before this time (RFC 3339 or YYYY-MM-DD).")
@target_options
def report(
    target: Target, by: str, output: str, period: str, since: str | None, until: str | None
) -> None:
    """Emissions and energy of every training run and serving, grouped.

    Training: each FineTuneJob's status.carbon (a deleted job's, from its ModelVersion).
    Serving: each InferenceDeployment's status.carbon per version served (a deleted
    deployment's, from the ModelVersions). Each operation counts once, so the rows add up to
    the total.

    Periods and --since/--until (UTC): a figure falls in the period of its end time: a job's
    completion (running: now), a version's creation for its verification and for a deleted
    job's training, now for a live deployment's serving, which is a total since the deployment
    started. Serving is split by period where the meters' history is at hand (local mode keeps
    it beside the meter's state; a deployment that served one version); otherwise it goes whole
    to the period of its last update (now). Exports, evaluations, batches and a deleted
    deployment's serving keep no time: they are in no period, and --since/--until leave them
    out.

    \b
    Example:
      mg carbon report --by experiment
      mg carbon report --by deployment -o csv > serving.csv
      mg carbon report --by model -o html > carbon.html
      mg carbon report --by period --period week --since 2026-11-01
    """
    from datetime import UTC, datetime

    from model_garden.carbon.report import group, parse_when, records, split_serving, total, within

    try:
        start = parse_when(since, "--since") if since else None
        end = parse_when(until, "--until") if until else None
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    backend = target.backend()
    backend.refresh()
    now = datetime.now(UTC)
    items, skipped = records(
        backend.items("FineTuneJob"),
        backend.items("ModelVersion"),
        backend.items("InferenceDeployment"),
        now=now,
    )
    if by == "period" or start or end:
        items = split_serving(
            items, _serving_histories(backend), period if by == "period" else "day"
        )
    items = within(items, start, end)
    rows, all_ = group(items, by, period), total(items)
    if output == "html":
        from model_garden.carbon.report_html import render

        title = f"{by} ({period})" if by == "period" else by
        click.echo(render(title, rows, all_, now.strftime("%Y-%m-%d %H:%M UTC")), nl=False)
        return
    if output == "json":
        doc = {
            "by": by,
            **({"period": period} if by == "period" else {}),
            "since": since,
            "until": until,
            "rows": [r.to_dict() for r in rows],
            "total": all_.to_dict(),
            "records": [r.to_dict() for r in items],
            "skipped": skipped,
        }
        click.echo(json.dumps(doc, indent=2))
        return
    if output == "csv":
        header = [by, "operations", "energy_kwh", "emissions_kg", "training_kg", "serving_kg"]
        header += ["tokens", "methods"]
        body = [
            [r.key or "", r.operations, r.energy_kwh, r.emissions_kg, r.training_kg, r.serving_kg]
            + [r.tokens, " ".join(r.methods)]
            for r in [*rows, all_]
        ]
        click.echo(_csv(header, body), nl=False)
        return
    from .train import energy

    _table(
        [by.upper(), "OPS", "ENERGY", "CO2E", "TRAINING", "SERVING", "TOKENS", "METHOD"],
        [
            [r.key, r.operations, energy(r.energy_kwh), _kg(r.emissions_kg)]
            + [_kg(r.training_kg), _kg(r.serving_kg), r.tokens or None, "/".join(r.methods)]
            for r in [*rows, all_]
        ],
        numeric={1, 2, 3, 4, 5, 6},
    )
    if skipped:
        click.echo(f"{skipped} object(s) left out: they do not parse", err=True)


def _serving_histories(backend: Any) -> dict[str, list[list[Any]]]:
    """Each deployment's meter history (local mode: the history files beside the meters'
    state; a cluster's Prometheus is the read API's to query): name -> points."""
    from model_garden.carbon.report import HistoryPoint
    from model_garden.readapi import history

    store = getattr(backend, "store", None)
    if store is None:
        return {}
    from model_garden.api.labels import LABEL_IDEP_UID

    out: dict[str, list[list[Any]]] = {}
    for idep in backend.items("InferenceDeployment"):
        meta = idep.get("metadata") or {}
        name, uid = str(meta.get("name") or ""), meta.get("uid")
        files = []
        for pod in store.list_raw("Pod"):
            if (pod["metadata"].get("labels") or {}).get(LABEL_IDEP_UID) != uid:
                continue
            scratch = store.scratch_dir(pod["metadata"]["name"])
            files += scratch.glob(f"*/model-garden/{history.meter_history_name('default', name)}")
        series = []
        for path in sorted(files):  # one meter each: its totals are cumulative on their own
            points = history.serving_points(history.read_jsonl([path]))
            series.append(
                [
                    HistoryPoint(
                        datetime.fromisoformat(p.time.replace("Z", "+00:00")),
                        p.energy_kwh,
                        p.emissions_kg,
                        p.tokens,
                    )
                    for p in points
                ]
            )
        if name and any(series):
            out[name] = series
    return out


@carbon.command()
@click.option("--country", help="One ISO alpha-3 country, e.g. FRA (any other: world average).")
@click.option(
    "--cloud",
    type=click.Choice(["aws", "gcp", "azure", "all"]),
    help="The cloud-region table instead: one cloud's regions, or all.",
)
@click.option(
    "--region",
    help="What a job or deployment in this region would use (e.g. aws:eu-west-3), and why.",
)
@FORMAT_OPTION
def regions(country: str | None, cloud: str | None, region: str | None, output: str) -> None:
    """Grid carbon intensities (g CO2e/kWh) the tracker uses, and where they come from.

    Countries by default; cloud regions (AWS, GCP, Azure: each row with its basis, source and
    year) with --cloud; the one intensity a region resolves to (overrides and a live provider
    first, then the tables) with --region.

    \b
    Example:
      mg carbon regions
      mg carbon regions --country SWE -o json
      mg carbon regions --cloud aws
      mg carbon regions --region gcp:europe-west1
    """
    from model_garden.carbon import report

    if region:
        row = report.region_intensity(country, region)
        if output == "json":
            click.echo(json.dumps(row, indent=2))
        elif output == "csv":
            click.echo(_csv(list(row), [list(row.values())]), nl=False)
        else:
            rows_kv = [[k, "" if v is None else str(v)] for k, v in row.items()]
            _table(["KEY", "VALUE"], rows_kv, numeric=set())
        return
    if cloud:
        rows = report.cloud_regions(None if cloud == "all" else cloud)
        names = ["region", "location", "country", "gPerKwh", "basis", "source", "year"]
        if output == "json":
            click.echo(json.dumps(rows, indent=2))
        elif output == "csv":
            click.echo(_csv(names, [[r[n] for n in names] for r in rows]), nl=False)
        else:
            _table(
                ["REGION", "LOCATION", "COUNTRY", "G/KWH", "BASIS", "SOURCE", "YEAR"],
                [[str(r[n]) if n != "gPerKwh" else figure(r[n]) for n in names] for r in rows],
                numeric={3},
            )
        return
    rows = report.regions(country)
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    elif output == "csv":
        click.echo(
            _csv(["country", "g_per_kwh", "source"], [list(r.values()) for r in rows]), nl=False
        )
    else:
        _table(
            ["COUNTRY", "G CO2E/KWH", "SOURCE"],
            [[r["country"], figure(r["gPerKwh"]), r["source"]] for r in rows],
            numeric={1},
        )


KINDS = {
    "finetunejob": "FineTuneJob",
    "ftj": "FineTuneJob",
    "inferencedeployment": "InferenceDeployment",
    "idep": "InferenceDeployment",
}


def _kind_name(value: str, option: str) -> tuple[str, str]:
    """``KIND/NAME`` (kind: FineTuneJob, ftj, InferenceDeployment, idep) → (kind, name)."""
    kind, sep, name = value.partition("/")
    if not sep or not name or kind.lower() not in KINDS:
        raise click.BadParameter(
            f"{value!r} is not KIND/NAME with KIND one of FineTuneJob (ftj),"
            " InferenceDeployment (idep)",
            param_hint=option,
        )
    return KINDS[kind.lower()], name


def _regions(values: tuple[str, ...]) -> dict[str, float]:
    """Candidate regions: ``CODE=G`` as given, a bare ``CODE`` at the tracker's intensity."""
    from model_garden.carbon.grid import grid_intensity
    from model_garden.carbon.recommend import candidate_regions

    try:
        return candidate_regions(values, lambda code: grid_intensity(code).g_per_kwh)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--region") from None


def _utilisation(values: tuple[str, ...]) -> dict[str, float]:
    from model_garden.carbon.recommend import key

    out: dict[str, float] = {}
    for value in values:
        target, sep, share = value.rpartition("=")
        kind, name = _kind_name(target, "--gpu-utilisation")
        try:
            fraction = float(share)
        except ValueError:
            fraction = -1.0
        if not sep or not 0 <= fraction <= 1:
            raise click.BadParameter(
                f"{value!r}: KIND/NAME=FRACTION, a fraction from 0 to 1",
                param_hint="--gpu-utilisation",
            )
        out[key(kind, name)] = fraction
    return out


def _local_histories(backend: Any) -> dict[str, list[dict[str, Any]]]:
    """Each job's trainer history (history.jsonl beside its outputs in the local store)."""
    from model_garden.api.labels import LABEL_MV
    from model_garden.carbon.recommend import key
    from model_garden.operator.finetunejob.objects import job_name
    from model_garden.readapi import history

    out: dict[str, list[dict[str, Any]]] = {}
    for ftj in backend.items("FineTuneJob"):
        name = str(ftj["metadata"]["name"])
        job = backend.store.get("Job", job_name(name)) or {}
        version = (job.get("metadata") or {}).get("labels", {}).get(LABEL_MV)
        uri = history.job_output_uri(ftj, version)
        path = backend.store.local_path(uri) / history.JOB_HISTORY if uri else None
        if path is not None and path.exists():
            out[key("FineTuneJob", name)] = history.read_jsonl([path])
    return out


@carbon.command()
@click.option(
    "--target",
    "target_ref",
    metavar="KIND/NAME",
    help="Only this object, e.g. ftj/tune or idep/bot.",
)
@click.option(
    "--region",
    "candidates",
    multiple=True,
    metavar="CODE[=G]",
    help="A region it could run in (repeat): CODE at the tracker's intensity, or CODE=G g/kWh.",
)
@click.option(
    "--forecast",
    type=click.Path(exists=True, dir_okay=False),
    help="Grid intensity forecast, JSON: [{time, gPerKwh}] or Electricity Maps' {forecast}.",
)
@click.option(
    "--gpu-utilisation",
    "utilisation",
    multiple=True,
    metavar="KIND/NAME=FRACTION",
    help="Mean GPU utilisation of an object, 0 to 1 (repeat).",
)
@OUTPUT_OPTION
@target_options
def recommend(
    target: Target,
    target_ref: str | None,
    candidates: tuple[str, ...],
    forecast: str | None,
    utilisation: tuple[str, ...],
    output: str,
) -> None:
    """Advice to emit less, each with its estimated saving (kg CO2e) and its assumptions.

    Rules (docs/carbon.md): LoRA/QLoRA instead of full fine-tuning of a large model; a cleaner
    region among --region; a cleaner time window from --forecast; early stopping once eval loss
    flattened (local mode reads the trainer's history); scale to zero or batch a deployment
    that idles or serves few tokens per joule; fewer GPUs when --gpu-utilisation is low. A rule
    that lacks an input says so instead of guessing.

    \b
    Example:
      mg carbon recommend
      mg carbon recommend --region FRA --region SWE=41 --target ftj/tune
      mg carbon recommend --forecast forecast.json -o json
    """
    from model_garden.carbon.recommend import evaluate, forecast_points, from_objects

    wanted = _kind_name(target_ref, "--target") if target_ref else None
    regions = _regions(candidates)
    points = None
    if forecast:
        try:
            points = forecast_points(json.loads(Path(forecast).read_text(encoding="utf-8")))
        except ValueError as exc:
            raise InvalidInput(f"--forecast {forecast}: {exc}") from exc
    backend = target.backend()
    backend.refresh()
    if wanted:
        must_get(backend, *wanted)
    jobs, deployments, skipped = from_objects(
        backend.items("FineTuneJob"),
        backend.items("ModelVersion"),
        backend.items("InferenceDeployment"),
        histories=_local_histories(backend) if backend.local else None,
        utilisation=_utilisation(utilisation),
    )
    advice = evaluate(jobs, deployments, regions=regions, forecast=points)
    found = advice.recommendations
    unknown = advice.unknown
    if wanted:
        found = [r for r in found if (r.target_kind, r.target) == wanted]
        unknown = [u for u in unknown if (u.target_kind, u.target) in (wanted, ("", ""))]
    if output in ("json", "yaml"):
        doc = {
            "recommendations": [asdict(r) for r in found],
            "unknown": [asdict(u) for u in unknown],
            "skipped": skipped,
        }
        if output == "json":
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)
        return
    if found:
        _table(
            ["SAVING", "RULE", "TARGET", "CONFIDENCE", "RECOMMENDATION"],
            [
                [_kg(r.saving_kg), r.rule, f"{r.target_kind}/{r.target}", r.confidence, r.message]
                for r in found
            ],
            numeric={0},
        )
    else:
        click.echo("no recommendation")
    if unknown:
        click.echo(_not_judged(unknown), err=True)
    if skipped:
        click.echo(f"{skipped} object(s) left out: they do not parse", err=True)


def _not_judged(unknown: list[Any]) -> str:
    """One line per rule and reason, naming the objects: what a rule lacked to judge."""
    lines: dict[tuple[str, str], list[str]] = {}
    for u in unknown:
        lines.setdefault((u.rule, u.reason), [])
        if u.target:
            lines[(u.rule, u.reason)].append(u.target)
    hints = {
        "no candidate regions": " (--region)",
        "no intensity forecast": " (--forecast)",
        "GPU utilisation not known": " (--gpu-utilisation)",
    }
    return "\n".join(
        f"not judged: {rule}: {reason}{hints.get(reason, '')}"
        + (f": {', '.join(names)}" if names else "")
        for (rule, reason), names in lines.items()
    )
