"""What the stages of one trainer run share, and how a run ends whatever happens.

:class:`RunContext` carries the config, the stop flag, the progress tracker, the carbon tracker
and the result so far (``base``: backend, method, base model, resume step, metrics), so that a
failure at any stage reports everything known by then. :meth:`RunContext.finish` is the one
place a result is written; SIGTERM past its bound writes one too (:meth:`RunContext.abandon`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from model_garden.api.contracts import Outcome, TrainingConfig, TrainingResult, TrainingState
from model_garden.carbon.tracker import TrainingCarbonTracker

from . import ownership
from .distributed import World, current
from .exits import EXIT_TERMINATED
from .outputs import failure, write_result
from .progress import ProgressServer, ProgressTracker, training_labels

SIGTERM_EXIT_BOUND_SECONDS = float(os.environ.get("MODEL_GARDEN_SIGTERM_BOUND", "60"))
"""After SIGTERM the trainer exits within this bound (one step + one checkpoint save normally);
the operator sets the pod's terminationGracePeriodSeconds above it (90 s)."""


def log(message: str, **fields: Any) -> None:
    """One JSON line on stdout: the pod log is the trainer's only log, and it is read by tools.

    The line goes out in one ``write`` (what Python buffered before is flushed first): under
    torchrun the ranks share one stdout, and a line written in pieces was seen split by
    another rank's line, which no JSON reader can parse."""
    line = json.dumps({"ts": round(time.time(), 3), "msg": message, **fields}, default=str)
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a captured stdout (tests): no descriptor
        print(line, flush=True)
        return
    sys.stdout.flush()
    os.write(fd, (line + "\n").encode("utf-8"))


def default_threads() -> int:
    """The CPUs this process may use (a pod's cpuset), not the node's: torch's default
    oversubscribes a CPU-limited pod."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class StopFlag:
    """Set by SIGTERM (and by the carbon budget); the loop polls it between steps."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.signalled_at: float | None = None

    def __call__(self) -> str | None:
        return self.reason


class Finished(Exception):
    """A stage ends the run early with this result and exit code (a refused backend, SIGTERM,
    the carbon budget): the run writes it like any other result, without a failure's log."""

    def __init__(self, result: TrainingResult, code: int) -> None:
        super().__init__(result.reason)
        self.result = result
        self.code = code


@dataclass(eq=False)
class RunContext:
    """The state every stage reads or adds to; one per run."""

    config: TrainingConfig
    base: TrainingResult
    """The result so far: every early result is a copy of it, so it names what was known."""
    tracker: ProgressTracker
    started: float = field(default_factory=time.monotonic)
    flag: StopFlag = field(default_factory=StopFlag)
    result_dir: Path | None = None
    """The output dir once it is claimed as ours: the result file goes there only then."""
    carbon: TrainingCarbonTracker | None = None
    threads: int = 1
    world: World = field(default_factory=World)
    """Under torchrun, this process's rank; only rank 0 writes (see distributed.py)."""
    on_checkpoint: Callable[[], None] | None = None
    """Run after each checkpoint is saved and pruned (rank 0): the S3 copy, see storage."""

    @classmethod
    def begin(
        cls, config: TrainingConfig, on_checkpoint: Callable[[], None] | None = None
    ) -> RunContext:
        """A run that has done nothing yet: its result would be a failure naming the method."""
        tracker = ProgressTracker(total_steps=0)
        tracker.labels = training_labels(config)
        base = TrainingResult(
            outcome=Outcome.FAILED,
            method=str(config.spec.method.type),
            base_model=config.runtime.base_model,
        )
        return cls(
            config=config, base=base, tracker=tracker, world=current(), on_checkpoint=on_checkpoint
        )

    @property
    def owner(self) -> str:
        return ownership.owner_id(self.config.job)

    def failed(self, reason: str, message: str) -> TrainingResult:
        """A failure that keeps what the run knew (backend, base model, resume step, metrics)."""
        b = self.base
        return failure(
            reason,
            message,
            backend=b.backend,
            method=b.method,
            base_model=b.base_model,
            resumed_from_step=b.resumed_from_step,
            parallelism=b.parallelism,
            metrics=b.metrics,
        )

    def stopped(self, reason: str, message: str) -> TrainingResult:
        """A stop on request (SIGTERM, the budget): the result so far with its reason."""
        return self.base.model_copy(update={"reason": reason, "message": message})

    def terminated(self, step: int) -> TrainingResult:
        return self.stopped(
            "Terminated", f"SIGTERM at step {step}: checkpoint saved; a rerun resumes from it"
        )

    def finish(self, result: TrainingResult, code: int) -> tuple[TrainingResult, int]:
        """Write the result (termination message, and the output dir if ours) with the final
        carbon figure and duration, and tell /progress the run is over."""
        result.duration_seconds = round(time.monotonic() - self.started, 3)
        if self.carbon is not None:
            result.carbon = self.carbon.stop()
        if self.world.main:  # the other ranks' outcome is rank 0's: it alone reports
            write_result(result, self.config.runtime.termination_message_path, self.result_dir)
        done = result.outcome == Outcome.SUCCEEDED
        self.tracker.set_state(TrainingState.DONE if done else TrainingState.FAILED)
        return result, code

    def abandon(self) -> None:
        """SIGTERM's bound passed with no step boundary: leave now; the last checkpoint is
        valid (checkpoints are atomic), so a rerun resumes from it."""
        res = self.stopped(
            "Terminated",
            f"SIGTERM: no step boundary within {SIGTERM_EXIT_BOUND_SECONDS}s; "
            "exiting; a rerun resumes from the last complete checkpoint",
        )
        if self.world.main:
            write_result(res, self.config.runtime.termination_message_path, self.result_dir)
        os._exit(EXIT_TERMINATED)

    def install_sigterm(self) -> None:
        """SIGTERM asks the loop to stop at the next step boundary (and checkpoint there); a
        watchdog :meth:`abandon`\\ s the run if that takes longer than the bound."""

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.flag.signalled_at is not None:
                return
            self.flag.reason = "SIGTERM"
            self.flag.signalled_at = time.monotonic()
            log(
                "SIGTERM: checkpointing at the next step boundary",
                bound_s=SIGTERM_EXIT_BOUND_SECONDS,
            )
            timer = threading.Timer(SIGTERM_EXIT_BOUND_SECONDS, self.abandon)
            timer.daemon = True
            timer.start()

        signal.signal(signal.SIGTERM, handler)

    def serve_progress(self) -> ProgressServer | None:
        """``/progress`` and ``/metrics`` from the start, so the operator sees loading too."""
        port = self.config.runtime.progress_port
        if port is None or not self.world.main:
            return None
        server = ProgressServer(self.tracker, port).start()
        log("progress server", port=server.port)
        return server
