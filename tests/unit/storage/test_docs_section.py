"""The resources shown in docs/training.md's storage section are valid (the docs test suite
does not read that page)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from model_garden.api import FineTuneJob, ModelVersion

PAGE = Path(__file__).resolve().parents[3] / "docs" / "training.md"


def test_storage_section_snippets_validate() -> None:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## Storage: S3, Hub, retention", 1)[1].split("\n## ", 1)[0]
    docs = [
        d
        for block in re.findall(r"```yaml\n(.*?)```", section, re.S)
        for d in yaml.safe_load_all(block)
    ]
    kinds = {d["kind"]: d for d in docs}
    ftj = FineTuneJob.model_validate(kinds["FineTuneJob"])
    assert ftj.spec.storage_secret == kinds["Secret"]["metadata"]["name"]
    assert ftj.spec.output.storage.startswith("s3://")
    mv = ModelVersion.model_validate(kinds["ModelVersion"])
    assert mv.spec.artifact.uri.startswith("hf://") and str(mv.spec.retention) == "Retain"
