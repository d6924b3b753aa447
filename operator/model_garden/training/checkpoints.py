"""Atomic checkpoints: write into a hidden temp folder, mark it complete, then rename.

A checkpoint is ``<checkpoint_dir>/checkpoint-<step>/`` holding the trainable weights, the
optimizer and scheduler state, RNG states and ``trainer_state.json``; ``COMPLETE`` is written
last and the folder only gets its final name by an atomic rename, so a run killed while saving
leaves a ``.tmp-…`` folder that is never picked (and is removed on the next start).

Each run keeps its checkpoints in its own folder, named by its run key (see ``runkey.py``), so
a run only ever sees its own. The claim holding them is writable by every trainer, so nothing
in a checkpoint is trusted to run code: every ``.pt`` file is loaded with ``weights_only=True``
(tensors and plain containers only); a file holding anything else is refused with
:class:`CheckpointRefused`, never unpickled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

PATTERN = re.compile(r"^checkpoint-(\d+)$")
MARKER = "COMPLETE"
STATE = "trainer_state.json"
REFUSED = "CheckpointRefused"
"""The ``TrainingResult`` reason when a checkpoint file holds more than plain data."""


class CheckpointRefused(RuntimeError):
    """A checkpoint file that ``weights_only`` loading rejects (it would run code)."""


def checkpoint_path(root: str | Path, step: int) -> Path:
    return Path(root) / f"checkpoint-{step}"


def step_of(name: str) -> int | None:
    """The step a checkpoint folder's name holds (``checkpoint-40`` → 40), None for others."""
    match = PATTERN.match(name)
    return int(match.group(1)) if match else None


def is_complete(path: Path) -> bool:
    """Complete = final name, marker present and the state file parses with the same step."""
    step = step_of(path.name)
    if step is None or not (path / MARKER).is_file():
        return False
    try:
        state = json.loads((path / STATE).read_text(encoding="utf-8"))
        marker = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if state.get("step") != step:
        return False
    files = marker.get("files", {})
    return all(
        (path / name).is_file() and (path / name).stat().st_size == size
        for name, size in files.items()
    )


def complete_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    base = Path(root)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if p.is_dir() and is_complete(p)]
    return sorted(found, key=lambda p: step_of(p.name) or 0)  # complete: named checkpoint-<n>


def latest_checkpoint(root: str | Path) -> Path | None:
    done = complete_checkpoints(root)
    return done[-1] if done else None


def clean_partial(root: str | Path) -> list[Path]:
    """Remove leftovers of interrupted saves (temp folders, unmarked checkpoint folders)."""
    base = Path(root)
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for p in base.iterdir():
        if p.is_dir() and (
            p.name.startswith(".tmp-") or (PATTERN.match(p.name) and not is_complete(p))
        ):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def prune(root: str | Path, keep: int) -> list[Path]:
    """Delete the oldest complete checkpoints beyond ``keep``."""
    done = complete_checkpoints(root)
    old = done[: max(0, len(done) - keep)]
    for p in old:
        # rename first so a kill mid-delete never leaves a "complete" half folder behind
        trash = p.with_name(f".tmp-delete-{p.name}")
        p.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    return old


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def begin(root: str | Path, step: int) -> Path:
    tmp = Path(root) / f".tmp-checkpoint-{step}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit(tmp: Path, step: int, state: dict[str, Any]) -> Path:
    """Write the state file and the marker (last), fsync, then rename into place."""
    (tmp / STATE).write_text(json.dumps({**state, "step": step}, indent=2), encoding="utf-8")
    files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
    for name in files:
        with (tmp / name).open("rb") as fh:
            os.fsync(fh.fileno())
    (tmp / MARKER).write_text(json.dumps({"files": files}), encoding="utf-8")
    final = checkpoint_path(tmp.parent, step)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    _fsync_dir(tmp.parent)
    return final


def read_state(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((path / STATE).read_text(encoding="utf-8"))
    return data


def save(
    root: str | Path,
    step: int,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    state: dict[str, Any],
    full: bool,
    gathered: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> Path:
    """Save the trainable weights + optimizer/scheduler/RNG state atomically (runtime only).

    ``gathered``: (full weights, full optimizer state) a sharded model gathered for rank 0
    (fsdp.full_state); the weights keep the names and the one-entry-per-tied-weight of an
    unsharded model's checkpoint, the optimizer state is keyed by parameter name."""
    import random

    import torch
    from safetensors.torch import save_file

    tmp = begin(root, step)
    if gathered is None:
        weights = trainable_state(model, full)
        optimizer_state = optimizer.state_dict()
    else:
        names = trainable_state(model, full)
        weights = {k: v for k, v in gathered[0].items() if k in names}
        optimizer_state = gathered[1]
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / "weights.safetensors"
    )
    torch.save(optimizer_state, tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")  # plain: see load_plain
    rng = {"python": random.getstate(), "torch": torch.get_rng_state()}
    torch.save(rng, tmp / "rng.pt")
    return commit(tmp, step, state)


def trainable_state(model: Any, full: bool) -> dict[str, Any]:
    """What training changes: trainable parameters (all of them for full fine-tuning).

    ``named_parameters`` lists a tied weight once, so safetensors accepts it; buffers such as
    rotary frequencies are rebuilt by the model and need no saving.
    """
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def load(
    path: Path, model: Any, optimizer: Any, scheduler: Any, full: bool, sharded: bool = False
) -> dict[str, Any]:
    """Restore a checkpoint saved by :func:`save`; returns its trainer state.

    ``sharded`` (FSDP): the checkpoint is full, every process reads it and keeps its shards
    (collective: every process calls this). A sharded run's optimizer state names its
    parameters, one process's numbers them: either loads into either (fsdp.py)."""
    import random

    import torch
    from safetensors.torch import load_file

    weights = load_file(path / "weights.safetensors")
    params = dict(model.named_parameters())
    missing = [k for k in weights if k not in params]
    if missing:
        raise RuntimeError(f"checkpoint {path} does not match the model: {missing[:3]}")
    optimizer_state = load_plain(path / "optimizer.pt")
    scheduler_state = load_plain(path / "scheduler.pt")
    rng = load_plain(path / "rng.pt")
    from .fsdp import keyed_by_name, load_full_state, named_optimizer_state

    named = keyed_by_name(optimizer_state)  # written by a sharded run
    if sharded or named:  # either side sharded: load by parameter name
        if not named:
            trainable = [n for n, p in model.named_parameters() if p.requires_grad]
            optimizer_state = named_optimizer_state(optimizer_state, trainable)
        load_full_state(model, optimizer, weights, optimizer_state)
    else:
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)
        optimizer.load_state_dict(optimizer_state)
    scheduler.load_state_dict(scheduler_state)
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(rng["torch"])
    return read_state(path)


def load_plain(path: Path) -> Any:
    """``torch.load`` that accepts only tensors and plain containers (never runs a pickle's code).

    Everything :func:`save` writes is of that kind: optimizer and scheduler state dicts, the
    Python RNG state (a tuple of ints) and the torch RNG state (a tensor).
    """
    import pickle

    import torch

    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointRefused(
            f"{path}: holds more than tensors and plain containers, refused unread "
            f"(weights_only): {first[:300]}"
        ) from exc
