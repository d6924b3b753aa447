"""The trainer's storage steps around a run: fetch remote inputs, copy checkpoints to S3 as they
are saved, publish remote outputs, drop checkpoints after success (see :mod:`.staging`,
:mod:`.checkpoint_mirror` and :mod:`.retention`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model_garden.api.contracts import Outcome, TrainingConfig, TrainingResult

from .retention import drop_checkpoints
from .s3 import StorageError
from .staging import (
    drop_saved_checkpoints,
    publish_training,
    save_checkpoints,
    stage_training,
)
from .uris import is_s3

REASON = "StorageError"


CheckpointHook = Callable[[], None]
"""Called by the trainer after each checkpoint is saved (and pruned)."""
Run = Callable[[TrainingConfig, CheckpointHook | None], tuple[TrainingResult, int]]


def run_with_storage(config: TrainingConfig, run: Run) -> tuple[TrainingResult, int]:
    """``run`` on a config with local paths only, its checkpoints copied to S3 as they are
    saved (s3:// checkpoints); a fetch or publish failure is a failed result (exit 1, so the
    Job retries: a network error may pass) written where results go."""
    from model_garden.training.exits import EXIT_FAILED
    from model_garden.training.outputs import failure, write_result

    def failed(exc: StorageError, output_dir: str | None) -> tuple[TrainingResult, int]:
        result = failure(REASON, str(exc))
        write_result(result, config.runtime.termination_message_path, output_dir)
        return result, EXIT_FAILED

    try:
        staged = stage_training(config)
    except StorageError as exc:
        return failed(exc, None)
    result, code = run(staged.config, staged.mirror.sync_logged if staged.mirror else None)
    if result.outcome != Outcome.SUCCEEDED:
        try:
            save_checkpoints(staged)  # what a failed sync missed, so the next pod resumes
        except StorageError as exc:
            from model_garden.training.session import log

            log("checkpoints-not-saved", error=str(exc))
        return result, code
    runtime = staged.config.runtime
    try:
        publish_training(
            staged,
            [(Path(a.path), a.uri, a.digest) for a in result.artifacts if a.uri and is_s3(a.uri)],
        )
    except StorageError as exc:
        return failed(exc, runtime.output_dir)
    try:
        if config.spec.checkpointing.keep_after_success:
            save_checkpoints(staged)
        else:
            from model_garden.training.ownership import owner_id

            drop_checkpoints(runtime.checkpoint_dir, owner_id(config.job))
            drop_saved_checkpoints(staged)
    except StorageError as exc:  # the artifacts are published: the job still succeeded
        from model_garden.training.session import log

        log("checkpoints-not-cleaned", error=str(exc))
    return result, code
