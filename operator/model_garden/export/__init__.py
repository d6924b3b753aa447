"""Export a ModelVersion as a standalone model (runtime only): ``python -m model_garden.export``."""
