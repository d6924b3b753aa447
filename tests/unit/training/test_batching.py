"""Length-grouped batch plans: deterministic, complete, and nearly free of padding."""

from __future__ import annotations

import random

from model_garden.training.batching import (
    padding_ratio,
    plan_epoch,
    step_batches,
    steps_per_epoch,
    total_steps,
)


def lengths(n: int = 500) -> list[int]:
    rng = random.Random(3)
    return [rng.randint(8, 400) for _ in range(n)]


def test_plan_covers_every_example_once_and_is_deterministic() -> None:
    ls = lengths()
    plan = plan_epoch(ls, 8, seed=1, epoch=0)
    assert sorted(i for b in plan for i in b) == list(range(len(ls)))
    assert plan == plan_epoch(ls, 8, seed=1, epoch=0)
    assert plan != plan_epoch(ls, 8, seed=1, epoch=1)


def test_grouping_cuts_padding() -> None:
    ls = lengths()
    grouped = padding_ratio(ls, plan_epoch(ls, 8, 1, 0, group_by_length=True))
    random_order = padding_ratio(ls, plan_epoch(ls, 8, 1, 0, group_by_length=False))
    assert grouped < 0.05 < 0.3 < random_order


def test_steps_and_accumulation() -> None:
    assert steps_per_epoch(100, 8, 1) == 13 and steps_per_epoch(100, 8, 2) == 7
    assert total_steps(100, 8, 1, epochs=3, max_steps=None) == 39
    assert total_steps(100, 8, 1, epochs=3, max_steps=5) == 5
    steps = step_batches(lengths(100), 8, 2, seed=0, group_by_length=True, epoch=0)
    assert len(steps) == 7 and all(1 <= len(s) <= 2 for s in steps)
