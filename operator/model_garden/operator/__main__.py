"""``python -m model_garden.operator``: run the operator against the current cluster."""

from .runner import main

main()
