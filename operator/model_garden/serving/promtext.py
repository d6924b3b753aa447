"""Read the few samples the meter needs out of a Prometheus text exposition (vLLM's /metrics).

A small parser rather than ``prometheus_client.parser``: the meter scrapes every second and only
wants a handful of series out of a page of histograms, so it skips every other line unparsed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_labels(text: str) -> dict[str, str]:
    """``a="1",b="x\\"y"`` -> {"a": "1", "b": 'x"y'}."""
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if not match:
            break
        labels[match.group(1)] = (
            match.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        )
        pos = match.end()
    return labels


def iter_samples(text: str, names: Iterable[str]) -> Iterable[tuple[str, dict[str, str], float]]:
    """(name, labels, value) for each sample whose metric name is in ``names``."""
    wanted = set(names)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        if brace != -1 and (space == -1 or brace < space):
            name = line[:brace]
            if name not in wanted:
                continue
            end = line.rfind("}")
            if end == -1:
                continue
            labels = parse_labels(line[brace + 1 : end])
            rest = line[end + 1 :].split()
        else:
            name = line[:space] if space != -1 else line
            if name not in wanted:
                continue
            labels = {}
            rest = line[space + 1 :].split() if space != -1 else []
        if not rest:
            continue
        try:
            value = float(rest[0])
        except ValueError:
            continue
        if math.isnan(value):
            continue
        yield name, labels, value


def sum_samples(text: str, names: Iterable[str]) -> dict[str, float]:
    """Each wanted metric summed over its label sets (absent metrics are absent from the result)."""
    totals: dict[str, float] = {}
    for name, _labels, value in iter_samples(text, names):
        totals[name] = totals.get(name, 0.0) + value
    return totals
