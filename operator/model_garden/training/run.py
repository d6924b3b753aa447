"""One trainer run: config → dataset check → model → train (checkpoints, progress) → artifacts.

Whatever happens, a :class:`TrainingResult` goes to the termination-message path and the output
dir. SIGTERM stops the run at the next step boundary, writes a checkpoint and exits with 143
within :data:`SIGTERM_EXIT_BOUND_SECONDS`; past that bound a watchdog exits anyway (the last
complete checkpoint stays valid, since checkpoints are atomic).

:func:`run` only orders the stages; each lives where its job is: :mod:`.stages` (output dir,
dataset, carbon, backend, tokens, model), :mod:`.resume` (run key and checkpoints), :mod:`.fit`
(the loop, final eval, artifacts), :mod:`.session` (the state they share, how a run ends),
:mod:`.exits` (exit codes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from model_garden.api.contracts import TrainingConfig, TrainingResult, read_document
from model_garden.storage.staging import stage_training
from model_garden.storage.trainer import run_with_storage

from . import checkpoints, distributed, ownership
from .datasets import DatasetError, DatasetErrors
from .exits import (
    BAD_INPUT_REASONS,
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INVALID_CONFIG,
    EXIT_TERMINATED,
    exit_code,
)
from .fit import fit
from .outputs import failure
from .resume import open_checkpoints
from .session import (
    SIGTERM_EXIT_BOUND_SECONDS,
    Finished,
    RunContext,
    StopFlag,
    default_threads,
    log,
)
from .stages import (
    check_dataset,
    choose_backend,
    claim_output,
    load_model,
    start_carbon,
    tokenize_dataset,
)

__all__ = [
    "BAD_INPUT_REASONS",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INVALID_CONFIG",
    "EXIT_TERMINATED",
    "SIGTERM_EXIT_BOUND_SECONDS",
    "StopFlag",
    "default_threads",
    "exit_code",
    "log",
    "main",
    "run",
]


def run(
    config: TrainingConfig, on_checkpoint: Callable[[], None] | None = None
) -> tuple[TrainingResult, int]:
    """Run one training and return its result and exit code; the result is written (termination
    message, output dir) whatever happens, and /progress serves the run from its start.
    ``on_checkpoint`` runs after each checkpoint is saved (the S3 copy, see storage)."""
    ctx = RunContext.begin(config, on_checkpoint)
    ctx.install_sigterm()
    server = ctx.serve_progress()
    try:
        distributed.init(ctx.world)
        return ctx.finish(*_stages(ctx))
    except Finished as done:  # a stage ended the run on purpose (SIGTERM, budget, backend)
        return ctx.finish(done.result, done.code)
    except Exception as exc:  # every failure still reports a result
        return ctx.finish(*_failure(ctx, exc))
    finally:
        if server is not None:
            server.stop()
        distributed.shutdown(ctx.world)


def _stages(ctx: RunContext) -> tuple[TrainingResult, int]:
    """The stages in their contract order (see :mod:`.stages`): nothing written before the
    output dir is ours, no weight loaded before the dataset is checked."""
    claim_output(ctx)
    report = check_dataset(ctx)
    carbon = start_carbon(ctx)
    backend, why = choose_backend(ctx)
    tokens = tokenize_dataset(ctx, report)
    if ctx.flag.reason:  # SIGTERM while loading: nothing to checkpoint yet
        return ctx.terminated(0), EXIT_TERMINATED
    model = load_model(ctx, tokens, backend, why)
    resumed = open_checkpoints(ctx, model, carbon)
    if not model.sharded:  # one start for all ranks (FSDP shards the same files' weights)
        distributed.broadcast_trainable(ctx.world, model.loaded.model)
    return fit(ctx, tokens, model, carbon, resumed), 0


def _failure(ctx: RunContext, exc: Exception) -> tuple[TrainingResult, int]:
    """The result of a run that raised: bad input no retry fixes exits 3 (:data:`EXIT_BAD_INPUT`),
    anything else 1 so the Job retries."""
    if isinstance(exc, DatasetError | DatasetErrors):
        bad = ctx.failed("DatasetError", str(exc))
    elif isinstance(exc, ownership.NotOurs):
        log("refused", path=str(exc.path), owner=exc.found)
        bad = ctx.failed(ownership.REASON, str(exc))
    elif isinstance(exc, checkpoints.CheckpointRefused):
        log("refused", error=str(exc))
        bad = ctx.failed(checkpoints.REFUSED, str(exc))
    else:
        kind = type(exc).__name__
        reason = "BackendUnavailable" if kind == "BackendUnavailable" else "TrainingError"
        log("failed", error=f"{kind}: {exc}")
        return ctx.failed(reason, f"{kind}: {exc}"), EXIT_FAILED
    return bad, exit_code(bad)


def main(argv: list[str] | None = None) -> int:
    """``python -m model_garden.training --config FILE``; an unreadable config exits 2."""
    parser = argparse.ArgumentParser(prog="python -m model_garden.training", description=__doc__)
    parser.add_argument("--config", required=True, help="TrainingConfig JSON file")
    args = parser.parse_args(argv)
    try:
        config = read_document(TrainingConfig, args.config)
    except (OSError, ValueError) as exc:
        result = failure("InvalidConfig", f"{args.config}: {exc}")
        print(result.to_termination_message(), file=sys.stderr)
        return EXIT_INVALID_CONFIG
    # s3:// and hf:// inputs fetched, s3:// outputs published, checkpoints dropped on success
    if distributed.current().main:
        result, code = run_with_storage(config, run)
    else:  # other torchrun ranks: inputs only; rank 0 alone publishes and drops checkpoints
        result, code = run(stage_training(config).config, None)
    log("result", outcome=result.outcome, reason=result.reason, detail=result.message)
    return code
