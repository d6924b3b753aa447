"""``python -m model_garden.export|evaluation``: the config document from a file or, as a
cluster Job passes it, from an environment variable; an unreadable one exits 2 naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_garden.api.common import ApiModel
from model_garden.api.contracts import Outcome
from model_garden.api.offline import (
    EXIT_INVALID_CONFIG,
    ExportConfig,
    ExportResult,
    program_main,
)

CONFIG = {
    "artifact": {"modelVersion": "pets-v1", "path": "/m", "adapter": False},
    "outDir": "/out",
}


def _run(config: ExportConfig) -> tuple[ApiModel, int]:
    result = ExportResult(outcome=Outcome.SUCCEEDED, model_version="x", out_dir=config.out_dir)
    return result, 0


def test_the_config_comes_from_a_file_or_an_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(CONFIG))
    assert program_main("p", None, ExportConfig, _run, ["--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["outDir"] == "/out"
    monkeypatch.setenv("TASK", json.dumps({**CONFIG, "outDir": "/elsewhere"}))
    assert program_main("p", None, ExportConfig, _run, ["--config-env", "TASK"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["outDir"] == "/elsewhere"


def test_an_unreadable_config_exits_2_naming_where_it_was(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TASK", '{"outDir": 3}')
    assert program_main("p", None, ExportConfig, _run, ["--config-env", "TASK"]) == 2
    assert capsys.readouterr().err.startswith("$TASK: ")
    monkeypatch.delenv("TASK")
    assert program_main("p", None, ExportConfig, _run, ["--config-env", "TASK"]) == 2
    assert EXIT_INVALID_CONFIG == 2
