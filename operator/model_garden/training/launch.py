"""``python -m model_garden.training.launch [torchrun options] -m model_garden.training --config F``:
torchrun itself (``torch.distributed.run``: same options, same ``PET_*`` environment, same
rendezvous), with the trainer's exit code kept.

Why not the ``torchrun`` script: when a worker fails it exits 1 whatever the worker's code was,
and the Job's podFailurePolicy needs the trainer's own codes (2: unreadable config, 3: bad
input, both fail the Job at once instead of being retried; 143: SIGTERM). Here the exit code is
rank 0's (the rank that wrote the result), else the first failed rank's; a signal that ended
the launcher itself exits 128 + its number, like a shell. The launcher also gives the workers
the trainer's SIGTERM bound before SIGKILL (torchrun's default is 30 s), so a checkpoint at
SIGTERM is not cut off.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping

from .session import SIGTERM_EXIT_BOUND_SECONDS

SHUTDOWN_TIMEOUT_ENV = "TORCH_ELASTIC_SHUTDOWN_TIMEOUT"


def exit_code_of(failures: Mapping[int, int]) -> int:
    """The launcher's exit code from the failed ranks' exit codes (global rank -> code; a
    negative code is a signal, as ``Popen.returncode`` gives it)."""
    if not failures:
        return 0
    code = failures[0] if 0 in failures else failures[min(failures)]
    if code < 0:
        return 128 + -code
    return code or 1


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault(SHUTDOWN_TIMEOUT_ENV, str(int(SIGTERM_EXIT_BOUND_SECONDS) + 15))
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except ChildFailedError as exc:
        return exit_code_of({rank: f.exitcode for rank, f in exc.failures.items()})
    except SignalException as exc:
        return 128 + int(signal.Signals(exc.sigval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
