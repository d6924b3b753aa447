"""``python -m model_garden.training --config FILE``: run one FineTuneJob's training.

Exit codes (the operator's Job ``podFailurePolicy`` reads them; the TrainingResult in the
termination message says why in every case):

- 0: trained; the artifacts and the result are written.
- 1 (``EXIT_FAILED``): failed in a way a retry may fix; the Job retries up to backoffLimit.
- 2 (``EXIT_INVALID_CONFIG``): the TrainingConfig cannot be read; the Job fails at once.
- 3 (``EXIT_BAD_INPUT``): bad input no retry fixes (``DatasetError``, ``OutputNotOurs``,
  ``CheckpointRefused``); the Job fails at once.
- 143: SIGTERM; a checkpoint was saved and a rerun resumes from it.
"""

from __future__ import annotations

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
