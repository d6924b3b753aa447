"""Checkpoints are keyed by the job's uid and what determines the weights (issue 8, item 8).

A recreated job (new uid) or changed data gets another checkpoint folder, so it never resumes
(nor publishes) the old run; a raised carbon budget keeps the key, so that run resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_garden.api.contracts import TrainingConfig
from model_garden.training import checkpoints as ck
from model_garden.training import runkey


def config(data: Path, uid: str = "u-1", **spec: Any) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "job": {"name": "tune", "namespace": "team", "uid": uid},
            "spec": {
                "baseModel": {"hub": {"id": "org/base", "revision": "abc123"}},
                "dataset": {"uri": f"file://{data}"},
                "hyperparameters": {"maxSteps": 30},
                **spec,
            },
            "runtime": {
                "baseModel": "org/base",
                "baseModelRevision": "abc123",
                "datasetPath": str(data),
                "outputDir": "/out",
                "checkpointDir": "/ckpt",
            },
        }
    )


def key(cfg: TrainingConfig) -> str:
    return runkey.run_key(runkey.key_inputs(cfg, runkey.dataset_digest(cfg.runtime.dataset_path)))


def test_key_changes_with_uid_data_base_and_hyperparameters(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a"}\n')
    base = config(data)
    first = key(base)
    assert key(config(data)) == first and len(first) == 64
    assert key(config(data, uid="u-2")) != first  # deleted and recreated by the same name
    revised = base.model_copy(deep=True)
    revised.runtime.base_model_revision = "def456"
    assert key(revised) != first
    assert key(config(data, hyperparameters={"maxSteps": 31})) != first
    assert key(config(data, method={"type": "full"})) != first
    data.write_text('{"text": "b"}\n')  # same path, other content
    assert key(config(data)) != first


def test_key_ignores_carbon_output_and_checkpointing(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a"}\n')
    first = key(config(data, carbon={"budgetKg": "0.001"}))
    assert key(config(data, carbon={"budgetKg": "5", "country": "FRA", "region": "idf"})) == first
    assert key(config(data, carbon={})) == first
    assert key(config(data, output={"merge": True}, checkpointing={"keep": 5})) == first


def test_dataset_folders_are_digested_by_content(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "data-0.arrow").write_bytes(b"rows")
    before = runkey.dataset_digest(folder)
    assert before.startswith("sha256:")
    (folder / "data-0.arrow").write_bytes(b"other rows")
    assert runkey.dataset_digest(folder) != before


def test_a_run_with_another_key_does_not_see_the_old_checkpoints(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a"}\n')
    old_dir = runkey.run_dir(tmp_path / "ckpt", key(config(data)))
    tmp = ck.begin(old_dir, 10)
    (tmp / "weights.safetensors").write_bytes(b"w")
    ck.commit(tmp, 10, {})
    assert ck.latest_checkpoint(old_dir) == old_dir / "checkpoint-10"
    assert ck.latest_checkpoint(runkey.run_dir(tmp_path / "ckpt", key(config(data)))) is not None
    recreated = runkey.run_dir(tmp_path / "ckpt", key(config(data, uid="u-2")))
    assert recreated != old_dir and ck.latest_checkpoint(recreated) is None
    data.write_text('{"text": "changed"}\n')
    changed = runkey.run_dir(tmp_path / "ckpt", key(config(data)))
    assert changed != old_dir and ck.latest_checkpoint(changed) is None
    budget = runkey.run_dir(tmp_path / "ckpt", key(config(data, carbon={"budgetKg": "9"})))
    assert budget == changed  # the budget is no part of the key: raising it resumes
