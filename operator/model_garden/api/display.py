"""Figures as people read them in ``kubectl get`` (printer columns show status fields verbatim).

A printer column prints a float as Go formats it (``5.969635973056826``, ``1.853e-07``) and
cannot pick a unit, so the controllers write the display figures into status themselves:

- ``status.progress.loss`` / ``evalLoss``: ``round_loss(x)`` (4 significant digits, still a number);
- ``status.progress.totalSteps``: ``planned_total_steps(spec maxSteps, trainer's count)``;
- ``status.carbon.emissions`` (FineTuneJob) and ``status.lifetimeEmissions`` (ModelVersion):
  ``format_emissions(kg)`` (``TrainingCarbonStatus.of`` does it), e.g. ``"185 µg"``; the exact kg figures stay beside them.
"""

from __future__ import annotations

import math

_UNITS = (("t", 1e3), ("kg", 1.0), ("g", 1e-3), ("mg", 1e-6), ("µg", 1e-9))


def round_loss(loss: float | None) -> float | None:
    """``loss`` to 4 significant digits (5.969635973056826 -> 5.97); None and non-finite stay."""
    if loss is None or not math.isfinite(loss):
        return loss
    return float(f"{loss:.4g}")


def format_emissions(kg: float | None) -> str | None:
    """kg CO2e in the largest unit that keeps the figure at least 1, to 3 significant digits.

    ``1.853453560257589e-07`` -> ``"185 µg"``, ``0.0123`` -> ``"12.3 g"``, ``0`` -> ``"0 g"``;
    below 1 µg it says ``"<1 µg"`` (a run never reports exactly zero, but a figure this small
    is noise). None (nothing measured yet) stays None.
    """
    if kg is None or not math.isfinite(kg) or kg < 0:
        return None
    if kg == 0:
        return "0 g"
    for unit, scale in _UNITS:
        value = float(f"{kg / scale:.3g}")  # round first: 999.7 g is "1 kg", not "1e+03 g"
        if value >= 1:
            return f"{_plain(value)} {unit}"
    return "<1 µg"


def _plain(value: float) -> str:
    """3 significant digits without exponent or trailing zeros: 185.0 -> '185', 1.5 -> '1.5'."""
    text = f"{value:.3g}"
    if "e" in text:  # only for values >= 1000 (tonnes); print them whole
        return f"{value:.0f}"
    return text


def planned_total_steps(max_steps: int | None, reported: int | None) -> int | None:
    """The TOTAL column: the trainer's count when it has one, else ``spec maxSteps``, else None.

    Written at job start from the spec (so ``maxSteps: 30`` shows 30 at once, never 0), then
    from each progress report (the trainer caps its count at maxSteps). None leaves the
    column empty until the trainer has counted the dataset.
    """
    if reported:
        return reported
    return max_steps
