"""The training loop shared by both backends (runtime only: imports torch inside functions).

Compute saved on purpose: the LM head and cross-entropy run only on positions that carry a
label (pads and prompt tokens never reach the vocabulary projection), batches are length
grouped (see batching.py), and fp32 without gradient checkpointing on CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .batching import collate, plan_epoch, step_batches
from .distributed import SINGLE, World, agree_stop, all_reduce_step, padded_shard, shard
from .fsdp import SPLIT_FORWARD, reshard
from .tokenize import IGNORE_INDEX


@dataclass
class LoopState:
    step: int = 0
    tokens: int = 0
    losses: list[float] = field(default_factory=list)
    initial_eval_loss: float | None = None
    eval_loss: float | None = None
    train_seconds: float = 0.0


class Interrupted(Exception):
    """SIGTERM (or a carbon budget) stopped the run after a checkpoint."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def _head_parts(model: Any) -> tuple[Any, Any, float | None] | None:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        decoder = base.get_decoder()
        head = base.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if decoder is None or head is None:
        return None
    softcap = getattr(base.config, "final_logit_softcapping", None)
    return decoder, head, softcap


def loss_sum(model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """(sum of token losses, label count) with logits only where a label is."""
    import torch.nn.functional as F

    labels = batch["labels"]
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    count = int(keep.sum())
    if _head_parts(model) is None:  # a model without the standard decoder/head split
        out = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"))
        logits = out.logits[:, :-1][keep].float()
        return F.cross_entropy(logits, target[keep], reduction="sum"), count
    # under FSDP the root registered this call as a forward of its own (fsdp.py)
    split = getattr(model, SPLIT_FORWARD, None)
    logits = split(batch, keep) if split is not None else label_logits(model, batch, keep)
    return F.cross_entropy(logits, target[keep], reduction="sum"), count


def label_logits(model: Any, batch: dict[str, Any], keep: Any) -> Any:
    """The decoder, then the head on the labelled positions only (fp32 logits)."""
    import torch

    parts = _head_parts(model)
    if parts is None:
        raise ValueError("the model has no decoder/head split")
    decoder, head, softcap = parts
    out = decoder(
        input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask"), use_cache=False
    )
    hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
    selected = hidden[:, :-1][keep]
    logits = head(selected).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


def evaluate(
    model: Any,
    ids: list[list[int]],
    labels: list[list[int]],
    batch_size: int,
    pad_id: int,
    device: str,
) -> float | None:
    import torch

    if not ids:
        return None
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        lengths = [len(x) for x in ids]
        for batch_idx in plan_epoch(lengths, batch_size, 0, 0, True):
            batch = collate(
                [ids[i] for i in batch_idx], [labels[i] for i in batch_idx], pad_id, device
            )
            s, n = loss_sum(model, batch)
            total += float(s)
            count += n
    reshard(model)  # FSDP: free the root's gathered weights (no backward will)
    if was_training:
        model.train()
    return total / max(count, 1)


def train(
    model: Any,
    ids: list[list[int]],
    labels: list[list[int]],
    *,
    batch_size: int,
    accumulation: int,
    seed: int,
    group_by_length: bool,
    total_steps: int,
    steps_per_epoch: int,
    optimizer: Any,
    scheduler: Any,
    pad_id: int,
    device: str,
    state: LoopState,
    on_step: Callable[[LoopState, float, float, int, float], None],
    should_stop: Callable[[], str | None],
    clip: float = 1.0,
    world: World = SINGLE,
    sharded: bool = False,
) -> LoopState:
    """Run optimizer steps from ``state.step`` to ``total_steps``.

    ``on_step(state, loss, lr, tokens, epoch)`` runs after every step (progress, checkpoints);
    ``should_stop()`` is polled between steps and returns a reason to stop, or None.

    With several processes (``world``, see distributed.py) one optimizer step spans
    ``accumulation x world.size`` micro-batches, each process runs its share, the gradients
    are summed before the step, and ``loss``/``tokens`` are the step's global figures; the
    processes agree on stopping, so they stop at the same step.

    ``sharded`` (FSDP, see fsdp.py): FSDP reduce-scatters the gradients itself, as a mean over
    the processes, so the loss is scaled by ``world.size`` and only the figures are summed
    here; every process runs as many micro-batches (zero-weighted padding), since each
    forward is a collective.
    """

    import torch

    lengths = [len(x) for x in ids]
    params = [p for p in model.parameters() if p.requires_grad]
    if sharded:  # the optimizer's: the module may hold the root's gathered copies (fsdp.py)
        params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    while state.step < total_steps:
        epoch = state.step // steps_per_epoch
        plan = step_batches(
            lengths, batch_size, accumulation * world.size, seed, group_by_length, epoch
        )
        for step_in_epoch in range(state.step % steps_per_epoch, len(plan)):
            if state.step >= total_steps:
                break
            reason = agree_stop(world, should_stop())
            if reason:
                raise Interrupted(reason, f"stopped before step {state.step + 1}: {reason}")
            started = time.perf_counter()
            micro = plan[step_in_epoch]
            n_labels = sum(
                sum(1 for t in labels[i][1:] if t != IGNORE_INDEX) for b in micro for i in b
            )
            step_loss, step_tokens = 0.0, 0
            mine = (
                padded_shard(micro, world) if sharded else [(b, 1.0) for b in shard(micro, world)]
            )
            scale = world.size if sharded else 1
            for b, weight in mine:
                batch = collate([ids[i] for i in b], [labels[i] for i in b], pad_id, device)
                s, _ = loss_sum(model, batch)
                (s * (weight * scale) / max(n_labels, 1)).backward()  # x1.0: as before, bit for bit
                step_loss += weight * float(s.detach())
                step_tokens += round(weight) * sum(lengths[i] for i in b)
            reduced = [] if sharded else params  # FSDP reduced the gradients already
            summed = all_reduce_step(world, reduced, [step_loss, float(step_tokens)])
            step_loss, step_tokens = summed[0], round(summed[1])
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            state.tokens += step_tokens
            state.train_seconds += time.perf_counter() - started
            loss = step_loss / max(n_labels, 1)
            state.losses.append(loss)
            state.losses = state.losses[-50:]
            lr = float(scheduler.get_last_lr()[0])
            epoch_done = epoch + (step_in_epoch + 1) / len(plan)
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at step {state.step}")
            on_step(state, loss, lr, step_tokens, epoch_done)
    return state
