"""``python -m model_garden.serving --config FILE``: the serving pod's launcher."""

import sys

from .launcher import main

sys.exit(main())
