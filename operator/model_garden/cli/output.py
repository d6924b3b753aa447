"""How reads print: ``-o table`` for people (rich), ``-o yaml`` / ``-o json`` for scripts.

JSON and YAML print the objects as the API server (or the local store) holds them; a list is
a ``kind: List`` with ``items``, as kubectl prints it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
import yaml

FORMATS = ("table", "yaml", "json")
OUTPUT_OPTION = click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output format.",
)
Column = tuple[str, Callable[[Any], Any]]


def console(stderr: bool = False) -> Any:
    """A rich console on the current stdout (stderr); wide and plain when not a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(file=stream, width=None if tty else 200, no_color=not tty, highlight=False)


def show(renderable: Any) -> None:
    """Print a rich renderable; off a terminal, without the padding at the ends of lines."""
    out = console()
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return str(value)


def emit(data: Any, fmt: str, columns: Sequence[Column]) -> None:
    """Print ``data`` (an object or a list of objects) in ``fmt``; tables use ``columns``."""
    if fmt == "json":
        doc = (
            {"apiVersion": "v1", "kind": "List", "items": data} if isinstance(data, list) else data
        )
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    if fmt == "yaml":
        doc = (
            {"apiVersion": "v1", "kind": "List", "items": data} if isinstance(data, list) else data
        )
        click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)
        return
    from rich import box
    from rich.table import Table

    rows = data if isinstance(data, list) else [data]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(fn(row)) for _, fn in columns))
    show(table)


def details(pairs: Sequence[tuple[str, Any]]) -> None:
    """A two-column ``field  value`` view of one object (``get -o table``)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE, show_header=False, show_edge=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        table.add_row(key, _cell(value))
    show(table)


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl's AGE: 45s, 12m, 3h, 2d."""
    if not timestamp:
        return "-"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def condition(obj: dict[str, Any], type: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type:
            return dict(cond)
    return {}


def figure(value: Any, digits: int = 3) -> str:
    """A number for people: 3 significant digits, no exponent for ordinary sizes."""
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number == 0:
        return "0"
    text = f"{number:.{digits}g}"
    if "e" in text and 1e-4 <= abs(number) < 1e6:
        text = f"{float(text):f}".rstrip("0").rstrip(".")  # 1.66e+03 -> 1660
    return text
