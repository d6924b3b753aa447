"""Evaluate a ModelVersion on a held-out dataset (runtime only): ``python -m model_garden.evaluation``."""
