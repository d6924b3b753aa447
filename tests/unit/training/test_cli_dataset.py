"""``model-garden dataset validate`` without a model (row checks run in-process)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from model_garden.cli.main import cli


def test_validate_ok_and_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"text": "hello"}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["dataset", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "format text (detected)" in result.output and "all 1 rows valid" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\n{"text": 3}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["dataset", "validate", str(bad), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["errorCount"] == 1 and "line 2: field 'text'" in report["errors"][0]
