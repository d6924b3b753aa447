"""The merge reloads the base exactly as training loaded it (issue 8, item 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_garden.api.contracts import TrainingConfig
from model_garden.training.merge import base_load_kwargs


def config(base: str, revision: str | None) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "job": {"name": "tune", "uid": "u-1"},
            "spec": {
                "baseModel": {"hub": {"id": "org/base", "revision": "abc123"}},
                "dataset": {"uri": "file:///d"},
            },
            "runtime": {
                "baseModel": base,
                "baseModelRevision": revision,
                "datasetPath": "/d",
                "outputDir": "/out",
                "checkpointDir": "/ckpt",
                "hfTokenEnv": "MG_TEST_TOKEN",
            },
        }
    )


def test_a_hub_base_is_reloaded_at_its_revision_with_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MG_TEST_TOKEN", "hf_x")
    kwargs = base_load_kwargs(config("org/base", "abc123"), "org/base")
    assert kwargs == {"revision": "abc123", "token": "hf_x"}
    monkeypatch.delenv("MG_TEST_TOKEN")
    assert base_load_kwargs(config("org/base", None), "org/base") == {}


def test_a_local_base_needs_no_hub_arguments(tmp_path: Path) -> None:
    assert base_load_kwargs(config(str(tmp_path), "abc123"), str(tmp_path)) == {}
