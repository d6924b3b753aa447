"""A small, learnable, deterministic dataset: a model that trains on it shows a falling eval loss."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "pink", "brown"]
ANIMALS = ["cat", "dog", "fox", "owl", "bee", "cow", "hen", "pig", "ant", "elk"]


def alpaca_rows(count: int = 300, seed: int = 0) -> list[dict[str, str]]:
    """Rows of instruction/input/output whose answer is a fixed function of the input.

    "Describe the pet." + "a red cat" -> "The cat is red." — learnable by a 100k-parameter model.
    Lengths vary (1–3 pets per row) so padding and packing have something to win.
    """
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        pets = [(rng.choice(COLOURS), rng.choice(ANIMALS)) for _ in range(rng.randint(1, 3))]
        rows.append(
            {
                "instruction": "Describe the pets.",
                "input": ", ".join(f"a {c} {a}" for c, a in pets),
                "output": " ".join(f"The {a} is {c}." for c, a in pets),
            }
        )
    return rows


def corpus(rows: list[dict[str, str]]) -> list[str]:
    """Text to train the tiny tokenizer on (covers every word the demo data uses)."""
    return [" ".join(str(v) for v in row.values()) for row in rows]


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return target
