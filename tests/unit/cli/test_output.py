"""Figures and ages as people read them in tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from model_garden.cli.output import age, figure
from model_garden.cli.train import energy


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (6.130841313576211, "6.13"),
        (1656.579666, "1660"),
        (0.000123456, "0.000123"),
        (1.5e-07, "1.5e-07"),
        (0, "0"),
        (None, "-"),
        ("1.52", "1.52"),
        ("n/a", "n/a"),
    ],
)
def test_figures_are_rounded_to_three_significant_digits(value: object, shown: str) -> None:
    assert figure(value) == shown


def test_energy_picks_a_unit() -> None:
    assert energy(0.0179e-3 * 1000) == "17.9 Wh"
    assert energy(1.79e-5) == "17.9 mWh"
    assert energy(2.5) == "2.5 kWh"
    assert energy(None) == "-"


def test_age_as_kubectl_prints_it() -> None:
    now = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)
    assert age("2026-01-02T11:59:15Z", now) == "45s"
    assert age("2026-01-02T11:48:00Z", now) == "12m"
    assert age("2026-01-02T09:00:00Z", now) == "3h"
    assert age("2025-12-30T12:00:00Z", now) == "3d"
    assert age(None, now) == "-"
