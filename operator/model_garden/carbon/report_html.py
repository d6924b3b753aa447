"""``mg carbon report -o html``: one self-contained page (no script, no external file) with the
grouped figures as a table and as bars, for people who want to mail or archive a report.

Pure: rows in, a string out. Every text is escaped; the bars are inline SVG sized from the
figures, so the page reads the same offline and in any mail client that shows HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .report import Row

BAR_WIDTH = 420
BAR_HEIGHT = 18
COLOURS = {"training": "#2f6fb3", "serving": "#2e9d6a", "other": "#b07a1f"}


def _kg(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} kg"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} g"
    return f"{value * 1e6:.3g} mg"


def _bars(rows: Sequence[Row]) -> str:
    """One stacked bar per row: training, serving and the other operations, to scale."""
    top = max((r.emissions_kg for r in rows), default=0.0) or 1.0
    lines = []
    for i, row in enumerate(rows):
        y = i * (BAR_HEIGHT + 8)
        other = max(row.emissions_kg - row.training_kg - row.serving_kg, 0.0)
        x = 0.0
        parts = []
        for name, kg in (
            ("training", row.training_kg),
            ("serving", row.serving_kg),
            ("other", other),
        ):
            width = BAR_WIDTH * kg / top
            if width > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{BAR_HEIGHT}"'
                    f' fill="{COLOURS[name]}"><title>{escape(name)}: {_kg(kg)}</title></rect>'
                )
            x += width
        label = escape(row.key or "(not known)")
        parts.append(
            f'<text x="{BAR_WIDTH + 8}" y="{y + BAR_HEIGHT - 4}" font-size="12">{label}'
            f" — {_kg(row.emissions_kg)}</text>"
        )
        lines.append("".join(parts))
    height = max(len(rows), 1) * (BAR_HEIGHT + 8)
    return (
        f'<svg role="img" aria-label="Emissions by group" width="{BAR_WIDTH + 360}"'
        f' height="{height}" xmlns="http://www.w3.org/2000/svg">{"".join(lines)}</svg>'
    )


def render(by: str, rows: Sequence[Row], total: Row, generated: str) -> str:
    """The report page: the total, the bars, and the table (the same figures as ``-o csv``)."""
    head = [
        "group",
        "operations",
        "energy (kWh)",
        "CO2e",
        "training",
        "serving",
        "tokens",
        "method",
    ]
    body = []
    for r in [*rows, total]:
        cells = [
            escape(r.key or "(not known)") if r is not total else "<strong>total</strong>",
            str(r.operations),
            f"{r.energy_kwh:.6g}",
            _kg(r.emissions_kg),
            _kg(r.training_kg),
            _kg(r.serving_kg),
            str(r.tokens or ""),
            escape("/".join(r.methods)),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    legend = " ".join(f'<span style="color:{c}">■</span> {escape(n)}' for n, c in COLOURS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model Garden carbon report by {escape(by)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1d2430; }}
table {{ border-collapse: collapse; margin-top: 1rem; }}
td, th {{ border-bottom: 1px solid #d5dae1; padding: .3rem .7rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
@media (prefers-color-scheme: dark) {{ body {{ background: #11151b; color: #e4e8ee; }}
  svg text {{ fill: #e4e8ee; }} td, th {{ border-color: #2b333e; }} }}
</style></head>
<body>
<h1>Carbon report by {escape(by)}</h1>
<p>Generated {escape(generated)}. Total: <strong>{_kg(total.emissions_kg)} CO2e</strong>,
{total.energy_kwh:.6g} kWh, {total.operations} operations (each counted once).</p>
<p>{legend}</p>
{_bars(rows)}
<table><thead><tr>{"".join(f"<th>{escape(h)}</th>" for h in head)}</tr></thead>
<tbody>{"".join(body)}</tbody></table>
</body></html>
"""
