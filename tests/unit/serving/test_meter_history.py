"""The meter's history file: a line of its totals beside the state file, at most every N s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_garden.readapi.history import meter_history_name, serving_points
from model_garden.serving.accounting import Accountant, VllmSnapshot
from model_garden.serving.meter import default_state_file

INTENSITY = 3600.0  # g/kWh: 1 J = 1 mg CO2e


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_at_most_every_interval_with_totals_and_rates(tmp_path: Path) -> None:
    clock = Clock()
    state = tmp_path / "meter-default-pets.json"
    acc = Accountant(INTENSITY, state_path=state, history_every_s=60, clock=clock)
    acc.tick({"cpu": 0.0}, VllmSnapshot(0, 0, 0, 0, 100.0), now=0)
    acc.save()  # first save: a line
    clock.now = 30
    acc.tick({"cpu": 3600.0}, VllmSnapshot(100, 50, 1, 0, 100.0), now=30)
    acc.save()  # 30 s later: too soon, no line
    clock.now = 61
    acc.tick({"cpu": 7200.0}, VllmSnapshot(200, 100, 2, 0, 100.0), now=61)
    acc.save()
    history = state.with_name("meter-default-pets.history.jsonl")
    lines = [json.loads(x) for x in history.read_text().splitlines()]
    assert len(lines) == 2
    assert lines[0]["tokens"] == 0 and lines[0]["tokensPerSecond"] is None
    assert lines[1]["tokens"] == 300
    assert lines[1]["tokensPerSecond"] == pytest.approx(300 / 61)
    assert lines[1]["energyKwh"] == pytest.approx(7200 / 3.6e6)
    assert lines[1]["emissionsKg"] == pytest.approx(7200 * INTENSITY / 3.6e6 / 1000)
    assert lines[1]["time"].endswith("Z")
    points = serving_points(lines)  # what the read API serves
    assert [p.tokens for p in points] == [0, 300]


def test_no_state_file_no_history() -> None:
    acc = Accountant(INTENSITY)
    acc.save()
    assert acc.history_path is None


def test_the_read_api_looks_for_the_name_the_meter_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODEL_GARDEN_METER_STATE", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    acc = Accountant(INTENSITY, state_path=default_state_file("team", "chat"))
    assert acc.history_path is not None
    assert acc.history_path.name == meter_history_name("team", "chat")
