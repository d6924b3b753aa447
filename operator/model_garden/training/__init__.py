"""The trainer: the program a FineTuneJob pod (and local mode) runs: ``python -m model_garden.training``.

Pure logic (dataset parsing and validation, batch planning, checkpoint selection, progress maths,
results) imports without torch; the modules that train import torch and friends inside functions.
"""
