"""Data-parallel training across processes (``torchrun``): a replica of the model per process
(LoRA, QLoRA), or shards of it (full fine-tuning, FSDP: fsdp.py).

Why not ``DistributedDataParallel``: our loop (loop.py) calls the decoder and the LM head apart,
so the head runs only where a label is. DDP synchronises gradients from hooks that its own
``forward`` arms; a loop that calls submodules bypasses that forward, and DDP would silently
average nothing. So each optimizer step here does what DDP does, explicitly: every process runs
its share of the step's micro-batches (:func:`shard`), then one ``all_reduce`` sums the trainable
gradients (one flat buffer, which also carries the step's loss and token counts). Each process
divides its loss by the *global* label count of the step (every process holds the whole
tokenised dataset, so it is computed without communication), so the summed gradient equals that
of one process running all those micro-batches: N processes with accumulation A train exactly
like one process with accumulation N x A (tests/ml/test_distributed_training.py checks it).

What is replicated: for LoRA and QLoRA every process holds all weights and optimizer state
(the base once per GPU, adapters tiny). Full fine-tuning on more than one process is sharded
instead (FSDP2, fsdp.py): each process holds 1/N of the weights, gradients and optimizer state;
FSDP reduce-scatters the gradients itself, so the explicit ``all_reduce`` here then sums only
the step's loss and token counts, and every process runs as many micro-batches
(:func:`padded_shard`). tests/ml/test_fsdp_training.py checks that it trains like one process.

Who writes: rank 0 alone claims the output directory, writes checkpoints, artifacts, the
progress server, the history and the result, and meters carbon for the node (CodeCarbon reads
the whole machine's RAPL/NVML counters, so one meter per node counts every GPU once; on more
than one node only node 0 is metered and the figure says so). Other ranks read the checkpoint
rank 0 chose once it is ready (:func:`barrier`). Sharded (FSDP), the other ranks also take part
in what needs the whole model (evaluations, gathering the state to write): those are
collectives, rank 0 still writes alone.

Stopping: SIGTERM reaches each process at a slightly different time, and the carbon budget is
only known to rank 0; a process that stopped alone would leave the others blocked in the next
``all_reduce``. Before each step the processes agree (:func:`agree_stop`, a MAX over a small
code), so all stop at the same step boundary.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STOP_REASONS: tuple[str, ...] = ("", "SIGTERM", "CarbonBudgetExceeded")
"""Stop reasons as codes for :func:`agree_stop` (index; 0 = keep going). Later ones win: the
budget's result (no retry) is more specific than a SIGTERM's."""


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process, rank 0, by default)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    """Processes on this node (they share its CPUs: each takes its part of the threads)."""

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes anything."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


SINGLE = World()
"""One process (no torchrun): rank 0 of 1."""


def world_from_env(env: Mapping[str, str]) -> World:
    """The world ``torchrun`` describes in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (absent:
    a single process). A malformed value is an error naming the variable."""

    def number(name: str, default: int) -> int:
        raw = env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None
        if value < 0:
            raise ValueError(f"environment variable {name}={raw!r} is negative")
        return value

    size = number("WORLD_SIZE", 1)
    rank = number("RANK", 0)
    local = number("LOCAL_RANK", 0)
    local_size = number("LOCAL_WORLD_SIZE", 1)
    if size < 1 or rank >= size:
        raise ValueError(f"RANK={rank} is not below WORLD_SIZE={size}")
    if local_size < 1 or local >= local_size:
        raise ValueError(f"LOCAL_RANK={local} is not below LOCAL_WORLD_SIZE={local_size}")
    return World(rank=rank, size=size, local_rank=local, local_size=local_size)


def shard(micro: Sequence[list[int]], world: World) -> list[list[int]]:
    """This process's micro-batches of one optimizer step: every ``size``-th, from ``rank``.

    A short last step can leave a process with none; it still joins the gradient sum (with
    zeros), so the processes never fall out of step."""
    return list(micro[world.rank :: world.size])


def padded_shard(micro: Sequence[list[int]], world: World) -> list[tuple[list[int], float]]:
    """This process's micro-batches of one step with their weights, padded so that every
    process runs as many: under FSDP each forward and backward is a collective, so a process
    that ran one fewer would leave the others waiting. A padding repeats a micro-batch of the
    step with weight 0 (it adds no gradient, loss or tokens)."""
    if not micro:
        return []
    mine: list[tuple[list[int], float]] = [(list(b), 1.0) for b in shard(micro, world)]
    rounds = -(-len(micro) // world.size)
    return mine + [(list(micro[0]), 0.0)] * (rounds - len(mine))


def encode_stop(reason: str | None) -> int:
    """The code :func:`agree_stop` exchanges for a stop reason (0: none; unknown: SIGTERM)."""
    if not reason:
        return 0
    return STOP_REASONS.index(reason) if reason in STOP_REASONS else 1


def decode_stop(code: int) -> str | None:
    if 0 <= code < len(STOP_REASONS):
        return STOP_REASONS[code] or None
    return "SIGTERM"


# --- the collectives (runtime only: torch is imported inside) ------------------------------------


def backend_name(cuda: bool) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if cuda else "gloo"


def init(world: World) -> None:
    """Join the process group ``torchrun`` set up (``MASTER_ADDR``/``MASTER_PORT`` in the
    environment) and pin this process to its GPU, so ``"cuda"`` means this process's GPU."""
    if not world.distributed:
        return
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend_name(cuda), rank=world.rank, world_size=world.size)


def shutdown(world: World) -> None:
    """Leave the process group together: a rank that tore it down while another still wrote
    its result aborted at exit (seen in CI: rank 1 "terminate called without an active
    exception", exit -6, after rank 0's final eval outlasted it). A peer that is gone already
    fails the barrier at once, and the group is torn down anyway."""
    if not world.distributed:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.barrier()
        except Exception:  # noqa: BLE001 - a peer already gone: nothing left to wait for
            pass
        dist.destroy_process_group()


def barrier(world: World) -> None:
    """Wait until every process got here (e.g. rank 0 finished preparing the checkpoints)."""
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def rank0_says(world: World, flag: bool) -> bool:
    """Rank 0's ``flag`` on every process (e.g. "this step needs a checkpoint", which only
    rank 0, the writer, can tell), for a decision that starts a collective."""
    if not world.distributed:
        return flag
    import torch
    import torch.distributed as dist

    value = torch.tensor([int(flag)], dtype=torch.int64, device=_device_of(world))
    dist.broadcast(value, src=0)
    return bool(value.item())


def agree_stop(world: World, reason: str | None) -> str | None:
    """The stop reason every process acts on: any process's reason stops them all."""
    if not world.distributed:
        return reason
    import torch
    import torch.distributed as dist

    code = torch.tensor([encode_stop(reason)], dtype=torch.int64, device=_device_of(world))
    dist.all_reduce(code, op=dist.ReduceOp.MAX)
    return decode_stop(int(code.item()))


def broadcast_trainable(world: World, model: Any) -> None:
    """Make every process start from rank 0's trainable weights (LoRA's random init differs per
    process; frozen base weights are loaded from the same files and stay equal)."""
    if not world.distributed:
        return
    import torch.distributed as dist

    for p in model.parameters():
        if p.requires_grad:
            dist.broadcast(p.data, src=0)


def all_reduce_step(world: World, params: Sequence[Any], extras: Sequence[float]) -> list[float]:
    """Sum every trainable gradient and ``extras`` (loss sum, tokens) over the processes, in
    one flat buffer; a process that ran no micro-batch contributes zeros. Returns the summed
    extras; the gradients are replaced in place."""
    if not world.distributed:
        return list(extras)
    import torch
    import torch.distributed as dist

    device = _device_of(world)
    parts = [
        (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params
    ]
    flat = torch.cat([*parts, torch.tensor(list(extras), dtype=torch.float32, device=device)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        summed = flat[offset : offset + n].view_as(p).to(p.dtype)
        if p.grad is None:
            p.grad = summed.clone()
        else:
            p.grad.copy_(summed)
        offset += n
    return [float(x) for x in flat[offset:].tolist()]


def _device_of(world: World) -> Any:
    import torch

    return torch.device("cuda", world.local_rank) if torch.cuda.is_available() else "cpu"


def current() -> World:
    """This process's world, from the environment torchrun set."""
    return world_from_env(os.environ)
