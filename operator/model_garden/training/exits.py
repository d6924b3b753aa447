"""The trainer's exit codes: they tell the Job's ``podFailurePolicy`` whether a retry can help.

The TrainingResult in the termination message says why in every case; the code only decides
between retrying (``backoffLimit``) and failing the Job at once.
"""

from __future__ import annotations

from model_garden.api.contracts import TrainingResult

from . import checkpoints, ownership

EXIT_FAILED = 1
"""A failure a retry may fix (a backend error, a node problem): the Job retries (backoffLimit)."""
EXIT_INVALID_CONFIG = 2
"""The TrainingConfig cannot be read: the Job's podFailurePolicy fails the Job at once."""
EXIT_BAD_INPUT = 3
"""The input is wrong in a way no retry fixes (a dataset that does not parse, an output
directory that is not this job's, a checkpoint that is refused): the podFailurePolicy fails the
Job at once instead of repeating the same failure ``backoffLimit`` times. The operator's
``TRAINER_EXIT_BAD_INPUT`` must equal it (a unit test checks)."""
EXIT_TERMINATED = 143
"""SIGTERM: a checkpoint was saved and a rerun resumes from it."""

BAD_INPUT_REASONS = frozenset(
    {"DatasetError", ownership.REASON, checkpoints.REFUSED, "CarbonBudgetExceeded"}
)
"""TrainingResult reasons that exit with :data:`EXIT_BAD_INPUT`: a retry cannot change them (a
retry after the carbon budget would resume and stop again at once; raising the budget resumes
the job instead, through the operator)."""


def exit_code(result: TrainingResult) -> int:
    """The process exit code of a failed run's result (its reason decides whether retrying
    can help); the result itself still goes to the termination message either way."""
    return EXIT_BAD_INPUT if result.reason in BAD_INPUT_REASONS else EXIT_FAILED
