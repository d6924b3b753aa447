"""The run's checkpoint folder: which one it is (the run key), resuming from it, saving into it.

The folder is keyed by the job's uid plus what determines the weights (:mod:`.runkey`), so a
recreated job, or one with other data, never resumes another run's weights; it is claimed like
the output dir (:mod:`.ownership`). A checkpoint carries the loop's counters and the energy so
far, so a resumed run's loss curve, throughput and carbon add up across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_garden.carbon.tracker import EnergySplit, TrainingCarbonTracker

from . import checkpoints, distributed, ownership, runkey
from .loop import LoopState
from .session import RunContext, log
from .stages import Model


@dataclass
class Resumed:
    """Where this run's checkpoints go, and the loop state to start from (step 0 if new)."""

    root: Path
    state: LoopState


def loop_state(saved: dict[str, Any]) -> LoopState:
    """The loop's counters as a checkpoint saved them (older checkpoints lack some: zeros)."""
    return LoopState(
        step=int(saved["step"]),
        tokens=int(saved.get("tokens", 0)),
        losses=list(saved.get("losses", [])),
        initial_eval_loss=saved.get("initialEvalLoss"),
        eval_loss=saved.get("evalLoss"),
        train_seconds=float(saved.get("trainSeconds", 0.0)),
    )


def saved_fields(state: LoopState, energy: EnergySplit, total: int) -> dict[str, Any]:
    """What a checkpoint stores besides the weights: the inverse of :func:`loop_state`, plus
    the energy so far (the next attempt adds its own to it)."""
    return {
        "tokens": state.tokens,
        "losses": state.losses,
        "initialEvalLoss": state.initial_eval_loss,
        "evalLoss": state.eval_loss,
        "trainSeconds": state.train_seconds,
        "energy": {"cpu_kwh": energy.cpu_kwh, "gpu_kwh": energy.gpu_kwh, "ram_kwh": energy.ram_kwh},
        "totalSteps": total,
    }


def open_checkpoints(ctx: RunContext, model: Model, carbon: TrainingCarbonTracker) -> Resumed:
    """Claim this run key's folder, drop partial checkpoints (a kill mid-save), and resume
    from the newest complete one: weights, optimizer, schedule, counters and energy.

    Under torchrun rank 0 claims and cleans the folder; every rank then loads the same
    checkpoint (the folder must be shared storage when the ranks span nodes)."""
    rt = ctx.config.runtime
    inputs = runkey.key_inputs(ctx.config, runkey.dataset_digest(rt.dataset_path))
    key = runkey.run_key(inputs)
    root = runkey.run_dir(rt.checkpoint_dir, key)
    if ctx.world.main:
        root = ownership.claim(root, ctx.owner)
        runkey.write_key_file(root, key, inputs)
        removed = checkpoints.clean_partial(root)
        if removed:
            log("removed incomplete checkpoints", paths=[str(p) for p in removed])
    distributed.barrier(ctx.world)
    state, previous = LoopState(), EnergySplit()
    latest = checkpoints.latest_checkpoint(root)
    if latest is not None:
        full = str(ctx.config.spec.method.type) == "full"
        saved = checkpoints.load(
            latest, model.loaded.model, model.optimizer, model.scheduler, full, model.sharded
        )
        state = loop_state(saved)
        previous = EnergySplit(**saved.get("energy", {}))
        ctx.base.resumed_from_step = state.step
        log("resumed", checkpoint=str(latest), step=state.step)
    carbon.previous = previous
    ctx.tracker.resume_at(model.total, state.step, state.tokens)
    return Resumed(root, state)


def save_checkpoint(
    ctx: RunContext, model: Model, root: Path, state: LoopState, energy: EnergySplit
) -> None:
    """An atomic checkpoint of this step, then prune to ``checkpointing.keep``.

    Sharded (FSDP): every process calls this, since gathering the full state is collective;
    rank 0 alone writes it."""
    spec = ctx.config.spec
    full = str(spec.method.type) == "full"
    gathered = None
    if model.sharded:
        from .fsdp import full_state

        gathered = full_state(model.loaded.model, model.optimizer)
    if not ctx.world.main:
        return
    path = checkpoints.save(
        root,
        state.step,
        model.loaded.model,
        model.optimizer,
        model.scheduler,
        saved_fields(state, energy, model.total),
        full,
        gathered,
    )
    pruned = checkpoints.prune(root, spec.checkpointing.keep)
    log("checkpoint", path=str(path), pruned=[p.name for p in pruned])
    if ctx.on_checkpoint is not None:
        ctx.on_checkpoint()
