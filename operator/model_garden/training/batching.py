"""Batch planning and collation: length-grouped batches, so almost no token is padding.

Why not one packed row: on CPU, SDPA has no variable-length kernel, so a packed row attends over
its whole length (quadratic, and masking to keep examples apart makes it dense work anyway).
Grouping examples of similar length into a batch padded to its longest keeps attention within
each example and the padding small; the order is a pure function of (seed, epoch), so a resumed
run sees the very batches it would have seen.
"""

from __future__ import annotations

import math
import random
from typing import Any

MEGABATCH = 64
"""Sort within windows of 64 batches: near-zero padding while batches stay shuffled."""


def plan_epoch(
    lengths: list[int], batch_size: int, seed: int, epoch: int, group_by_length: bool = True
) -> list[list[int]]:
    """Index batches for one epoch (deterministic in seed and epoch)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    window = batch_size * MEGABATCH
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def steps_per_epoch(examples: int, batch_size: int, accumulation: int) -> int:
    return max(1, math.ceil(math.ceil(examples / batch_size) / accumulation))


def total_steps(
    examples: int, batch_size: int, accumulation: int, epochs: int, max_steps: int | None
) -> int:
    return max_steps or steps_per_epoch(examples, batch_size, accumulation) * epochs


def step_batches(
    lengths: list[int],
    batch_size: int,
    accumulation: int,
    seed: int,
    group_by_length: bool,
    epoch: int,
) -> list[list[list[int]]]:
    """One epoch as optimizer steps, each a list of micro-batches."""
    micro = plan_epoch(lengths, batch_size, seed, epoch, group_by_length)
    return [micro[i : i + accumulation] for i in range(0, len(micro), accumulation)]


def padding_ratio(lengths: list[int], batches: list[list[int]]) -> float:
    """Share of pad tokens a plan produces (0 = none)."""
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches if b)
    return 1 - real / padded if padded else 0.0


def collate(
    input_ids: list[list[int]], labels: list[list[int]], pad_id: int, device: Any = "cpu"
) -> dict[str, Any]:
    """Right-pad one micro-batch to its longest example; labels of pads are ignored."""
    import torch

    longest = max(len(x) for x in input_ids)
    n = len(input_ids)
    ids = torch.full((n, longest), pad_id, dtype=torch.long)
    lab = torch.full((n, longest), -100, dtype=torch.long)
    mask = torch.zeros((n, longest), dtype=torch.long)
    for row, (x, y) in enumerate(zip(input_ids, labels, strict=True)):
        ids[row, : len(x)] = torch.tensor(x, dtype=torch.long)
        lab[row, : len(y)] = torch.tensor(y, dtype=torch.long)
        mask[row, : len(x)] = 1
    batch = {"input_ids": ids, "labels": lab, "attention_mask": mask}
    if all(len(x) == longest for x in input_ids):
        del batch["attention_mask"]  # no padding: the plain causal kernel path
    return {k: v.to(device) for k, v in batch.items()}
