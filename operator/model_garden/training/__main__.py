"""``python -m model_garden.training --config FILE``: run one FineTuneJob's training."""

from __future__ import annotations

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
