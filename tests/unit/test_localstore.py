"""Local mode keeps resources as YAML files; versions count up per model."""

from __future__ import annotations

from pathlib import Path

from harness.invalid_cases import MV
from model_garden.api import ModelVersion
from model_garden.cli.localstore import LocalStore


def version(n: int, model: str = "support-bot") -> ModelVersion:
    body = {
        **MV,
        "metadata": {"name": f"{model}-v{n}"},
        "spec": {**MV["spec"], "model": model, "version": n},
    }
    return ModelVersion.model_validate(body)


def test_saved_resources_read_back_equal(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    path = store.save(version(1))
    assert path == tmp_path / "objects/modelversions/support-bot-v1.yaml"
    assert store.list(ModelVersion) == [version(1)]
    assert not list(path.parent.glob(".*.tmp")), "no temporary file left behind"


def test_next_version_counts_per_model(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.next_version("support-bot") == 1
    for n in (1, 2, 5):
        store.save(version(n))
    store.save(version(7, model="other"))
    assert store.next_version("support-bot") == 6
    assert store.next_version("other") == 8
