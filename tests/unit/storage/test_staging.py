"""Fetch before, publish after: the trainer's and the launcher's storage steps on moto S3.

The training run itself is a stand-in here (a function writing the folders the trainer writes:
no model is trained in unit tests); tests/ml/test_s3_training.py runs the real trainer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_garden.api.contracts import (
    ArtifactFile,
    ServingConfig,
    TrainingConfig,
    TrainingResult,
)
from model_garden.api.digest import artifact_digest
from model_garden.storage import s3 as s3io
from model_garden.storage.staging import Fetcher, stage_serving, stage_training
from model_garden.storage.trainer import run_with_storage
from model_garden.storage.transfer import MARKER, publish, s3_digest
from model_garden.storage.uris import parse_s3
from model_garden.training import ownership

ROWS = '{"instruction": "hi", "output": "hello"}\n'


def config(tmp_path: Path, bucket: str, **checkpointing: Any) -> TrainingConfig:
    term = tmp_path / "termination-log"
    term.touch()
    return TrainingConfig.model_validate(
        {
            "job": {"name": "chat", "namespace": "team", "uid": "u-1"},
            "spec": {
                "baseModel": {"uri": "file:///models/base"},
                "dataset": {"uri": f"s3://{bucket}/data/train.jsonl"},
                "output": {"storage": f"s3://{bucket}/out"},
                "storageSecret": "creds",
                "checkpointing": checkpointing,
            },
            "runtime": {
                "baseModel": "/models/base",
                "datasetPath": f"s3://{bucket}/data/train.jsonl",
                "outputDir": f"s3://{bucket}/out/team/chat/v1",
                "checkpointDir": f"s3://{bucket}/out/team/jobs/chat/checkpoints",
                "artifactUri": f"s3://{bucket}/out/team/chat/v1",
                "progressPort": 0,
                "terminationMessagePath": str(term),
            },
        }
    )


def fake_run(seen: list[TrainingConfig]) -> Any:
    """Stand-in for the trainer's run(): what it writes, with the digest it reports."""

    def run(cfg: TrainingConfig, on_checkpoint: Any) -> tuple[TrainingResult, int]:
        seen.append(cfg)
        rt = cfg.runtime
        out = Path(rt.output_dir)
        folder = out / "adapter"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "adapter_config.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_bytes(b"w" * 2048)
        (out / "result.json").write_text("{}")
        run_dir = ownership.claim(Path(rt.checkpoint_dir) / "run-abc", "u-1")
        (run_dir / "checkpoint-5").mkdir(exist_ok=True)
        (run_dir / "checkpoint-5" / "COMPLETE").write_text('{"files": {}}')
        (run_dir / "checkpoint-5" / "trainer_state.json").write_text('{"step": 5}')
        if on_checkpoint is not None:  # the trainer's hook after a save: the S3 copy
            on_checkpoint()
        found = artifact_digest(folder)
        artifact = ArtifactFile(
            kind="adapter",
            path=str(folder),
            uri=f"{rt.artifact_uri}/adapter",
            size_bytes=found.size_bytes,
            digest=found.digest,
        )
        return TrainingResult(outcome="Succeeded", artifacts=[artifact]), 0

    return run


def test_training_fetches_the_dataset_and_publishes_the_adapter(
    tmp_path: Path, bucket: str, s3c: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "cache"))
    s3io.put_bytes(s3c, parse_s3(f"s3://{bucket}/data/train.jsonl"), ROWS.encode())
    seen: list[TrainingConfig] = []
    result, code = run_with_storage(config(tmp_path, bucket), fake_run(seen))
    assert code == 0 and result.outcome == "Succeeded"
    rt = seen[0].runtime
    assert Path(rt.dataset_path).read_text() == ROWS  # fetched into the cache before the run
    assert rt.output_dir.startswith(str(tmp_path / "cache"))
    assert rt.artifact_uri == f"s3://{bucket}/out/team/chat/v1"
    uri = f"s3://{bucket}/out/team/chat/v1/adapter"
    assert s3_digest(s3c, uri, require_marker=True).digest == result.artifacts[0].digest
    keys = {k for k, _ in s3io.list_prefix(s3c, parse_s3(f"s3://{bucket}/out"))}
    assert f"out/team/chat/v1/adapter/{MARKER}" in keys and "out/team/chat/v1/result.json" in keys
    # keepAfterSuccess is off by default: the run's checkpoints are gone
    assert not (Path(rt.checkpoint_dir) / "run-abc").exists()


def test_checkpoints_are_kept_when_asked(
    tmp_path: Path, bucket: str, s3c: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "cache"))
    s3io.put_bytes(s3c, parse_s3(f"s3://{bucket}/data/train.jsonl"), ROWS.encode())
    seen: list[TrainingConfig] = []
    run_with_storage(config(tmp_path, bucket, keepAfterSuccess=True), fake_run(seen))
    assert (Path(seen[0].runtime.checkpoint_dir) / "run-abc" / "checkpoint-5").is_dir()


def test_a_missing_dataset_fails_the_run_before_it_starts(
    tmp_path: Path, bucket: str, s3c: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "cache"))
    seen: list[TrainingConfig] = []
    result, code = run_with_storage(config(tmp_path, bucket), fake_run(seen))
    assert seen == [] and code == 1
    assert result.reason == "StorageError"
    assert f"s3://{bucket}/data/train.jsonl: no object or folder there" in result.message
    written = json.loads((tmp_path / "termination-log").read_text())
    assert written["reason"] == "StorageError"


def test_local_configs_pass_through_without_a_client(tmp_path: Path) -> None:
    cfg = config(tmp_path, "b-x")
    local = cfg.model_copy(
        update={
            "runtime": cfg.runtime.model_copy(
                update={"dataset_path": "/d.jsonl", "output_dir": "/o", "checkpoint_dir": "/c"}
            )
        }
    )
    fetcher = Fetcher(tmp_path)
    staged = stage_training(local, fetcher)
    assert staged.config == local and staged.output_uri is None and fetcher._client is None


def test_serving_fetches_s3_adapters_and_leaves_local_paths(
    tmp_path: Path, bucket: str, s3c: Any
) -> None:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    publish(s3c, folder, f"s3://{bucket}/team/chat/v1/adapter")
    cfg = ServingConfig.model_validate(
        {
            "deployment": {"name": "bot", "namespace": "team", "uid": "u"},
            "spec": {"modelVersion": "base-v1"},
            "model": {"name": "base", "path": "/mnt/model-garden/artifacts/base"},
            "adapters": [{"name": "chat", "path": f"s3://{bucket}/team/chat/v1/adapter"}],
        }
    )
    staged = stage_serving(cfg, Fetcher(tmp_path / "cache"))
    assert staged.model.path == "/mnt/model-garden/artifacts/base"
    local = Path(staged.adapters[0].path)
    assert local.is_relative_to(tmp_path / "cache") and (local / "adapter_config.json").is_file()
    assert not (local / MARKER).exists()


def failing_run(seen: list[TrainingConfig]) -> Any:
    """Stand-in for a run stopped by SIGTERM after a checkpoint: what it leaves behind."""
    succeed = fake_run(seen)

    def run(cfg: TrainingConfig, on_checkpoint: Any) -> tuple[TrainingResult, int]:
        succeed(cfg, on_checkpoint)
        return TrainingResult(outcome="Failed", reason="Terminated"), 143

    return run


def test_an_unfinished_run_saves_checkpoints_and_the_next_pod_restores_them(
    tmp_path: Path, bucket: str, s3c: Any, monkeypatch: Any
) -> None:
    s3io.put_bytes(s3c, parse_s3(f"s3://{bucket}/data/train.jsonl"), ROWS.encode())
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "pod-1"))
    seen: list[TrainingConfig] = []
    result, code = run_with_storage(config(tmp_path, bucket), failing_run(seen))
    assert code == 143 and result.reason == "Terminated"
    ckpt_uri = f"s3://{bucket}/out/team/jobs/chat/checkpoints"
    keys = {k for k, _ in s3io.list_prefix(s3c, parse_s3(ckpt_uri))}
    assert f"out/team/jobs/chat/checkpoints/run-abc/checkpoint-5/{MARKER}" in keys
    # a new pod (an empty cache) finds the run's checkpoint where the trainer looks for it
    staged = stage_training(config(tmp_path, bucket), Fetcher(tmp_path / "pod-2"))
    restored = Path(staged.config.runtime.checkpoint_dir) / "run-abc"
    assert (restored / "checkpoint-5" / "trainer_state.json").is_file()
    assert ownership.read_owner(restored) == "u-1"
    # the run then succeeds: the saved checkpoints go too
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "pod-3"))
    run_with_storage(config(tmp_path, bucket), fake_run(seen))
    assert s3io.list_prefix(s3c, parse_s3(ckpt_uri)) == []
