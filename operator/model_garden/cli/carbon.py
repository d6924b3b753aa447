"""``model-garden carbon report|regions``: emissions by job, version, model, deployment,
experiment or region (from the objects' status, :mod:`model_garden.carbon.report`), and the grid
intensities the tracker uses."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

import click

from .output import figure, show
from .target import Target, target_options

FORMATS = ("table", "csv", "json")
BY = ("job", "version", "model", "deployment", "experiment", "region", "operation")
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
    """


@carbon.command()
@click.option("--by", type=click.Choice(BY), default="version", show_default=True, help="Group by.")
@FORMAT_OPTION
@target_options
def report(target: Target, by: str, output: str) -> None:
    """Emissions and energy of every training run and serving, grouped.

    Training: each FineTuneJob's status.carbon (a deleted job's, from its ModelVersion).
    Serving: each InferenceDeployment's status.carbon per version served (a deleted
    deployment's, from the ModelVersions). Each operation counts once, so the rows add up to
    the total.

    \b
    Example:
      mg carbon report --by experiment
      mg carbon report --by deployment -o csv > serving.csv
    """
    from model_garden.carbon.report import group, records, total

    backend = target.backend()
    backend.refresh()
    items, skipped = records(
        backend.items("FineTuneJob"),
        backend.items("ModelVersion"),
        backend.items("InferenceDeployment"),
    )
    rows, all_ = group(items, by), total(items)
    if output == "json":
        doc = {
            "by": by,
            "rows": [r.to_dict() for r in rows],
            "total": all_.to_dict(),
            "records": [asdict(r) for r in items],
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


@carbon.command()
@click.option("--country", help="One ISO alpha-3 country, e.g. FRA (any other: world average).")
@FORMAT_OPTION
def regions(country: str | None, output: str) -> None:
    """Grid carbon intensities (g CO2e/kWh) the tracker uses, and where they come from.

    \b
    Example:
      mg carbon regions
      mg carbon regions --country SWE -o json
    """
    from model_garden.carbon.report import regions as grid_rows

    rows = grid_rows(country)
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
