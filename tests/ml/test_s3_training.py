"""A real CPU training run whose dataset is read from S3 and whose adapter is published to it.

The S3 server is moto's, started by the test (tests/unit/storage/conftest.py); the trainer is
the real program in the CPU runtime, given the AWS variables a storage Secret would give it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from ml.test_training_support import (
    result_of,
    start_trainer,
    trainer_events,
    trainer_log,
    training_config,
    training_data,
    wait,
)
from model_garden.operator.verify import main as verify_main
from model_garden.storage import s3 as s3io
from model_garden.storage.transfer import MARKER, download, s3_digest
from model_garden.storage.uris import parse_s3
from unit.storage import conftest as moto_s3

pytestmark = pytest.mark.ml

# moto's S3 server and a bucket, the fixtures of the storage unit tests
s3_endpoint, s3_env, bucket, s3c = moto_s3.s3_endpoint, moto_s3.s3_env, moto_s3.bucket, moto_s3.s3c


def s3_config(path: Path, bucket: str, name: str) -> str:
    """Point a written TrainingConfig's dataset, output and checkpoints at the bucket."""
    config = json.loads(path.read_text())
    out = f"s3://{bucket}/artifacts/test/{name}/v1"
    config["spec"]["dataset"]["uri"] = f"s3://{bucket}/datasets/pets.jsonl"
    config["spec"]["output"]["storage"] = f"s3://{bucket}/artifacts"
    config["runtime"].update(
        datasetPath=f"s3://{bucket}/datasets/pets.jsonl",
        outputDir=out,
        checkpointDir=f"s3://{bucket}/artifacts/test/jobs/{name}/checkpoints",
        artifactUri=out,
    )
    path.write_text(json.dumps(config))
    return out


def test_training_reads_s3_dataset_and_publishes_adapter_to_s3(
    tiny_model: Path, tmp_path: Path, bucket: str, s3c: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = training_data(tmp_path, 80)
    s3io.upload_file(s3c, data, parse_s3(f"s3://{bucket}/datasets/pets.jsonl"))
    work = tmp_path / "s3-job"
    path = training_config(work, tiny_model, data, steps=6, every=3, keep_after_success=False)
    out = s3_config(path, bucket, "s3-job")
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(cache))

    assert wait(start_trainer(path), work) == 0, trainer_log(work)[-3000:]
    result = result_of(work)
    (adapter,) = result.artifacts
    assert adapter.uri == f"{out}/adapter"
    # published with its marker, and the objects hash to what the trainer reported
    assert s3_digest(s3c, adapter.uri, require_marker=True).digest == adapter.digest
    keys = {k for k, _ in s3io.list_prefix(s3c, parse_s3(out))}
    assert f"artifacts/test/s3-job/v1/adapter/{MARKER}" in keys
    assert "artifacts/test/s3-job/v1/training-result.json" in keys
    # the verification Job's program agrees, and the adapter can be fetched back
    log = tmp_path / "verify-log"
    code = verify_main(
        [
            "--path",
            adapter.uri,
            "--format",
            "adapter",
            "--require-manifest",
            "--termination-log",
            str(log),
        ]
    )
    assert code == 0 and json.loads(log.read_text())["digest"] == adapter.digest
    fetched = download(s3c, adapter.uri, tmp_path / "fetched", require_marker=True)
    assert (fetched / "adapter_config.json").is_file()
    # checkpoints were written to the cache and dropped once the job succeeded
    assert not list((cache / "jobs").glob("*/checkpoints/run-*"))


def test_a_stopped_run_resumes_in_a_new_pod_from_checkpoints_saved_to_s3(
    tiny_model: Path, tmp_path: Path, bucket: str, s3c: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A carbon-budget stop checkpoints; the rerun, in a pod with an empty cache, resumes."""
    data = training_data(tmp_path, 80)
    s3io.upload_file(s3c, data, parse_s3(f"s3://{bucket}/datasets/pets.jsonl"))
    work = tmp_path / "s3-resume"
    small = {"country": "FRA", "budgetKg": "1e-12"}
    path = training_config(work, tiny_model, data, steps=6, every=100, carbon=small)
    s3_config(path, bucket, "s3-resume")
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "pod-1"))
    wait(start_trainer(path), work)
    stopped = result_of(work)
    assert stopped.reason == "CarbonBudgetExceeded", trainer_log(work)[-3000:]
    saved = f"s3://{bucket}/artifacts/test/jobs/s3-resume/checkpoints"
    step = f"checkpoint-{stopped.metrics.steps}"
    assert any(
        k.endswith(f"/{step}/{MARKER}") for k, _ in s3io.list_prefix(s3c, parse_s3(saved))
    ), "the stop's checkpoint is on S3, complete"

    raised = {"country": "FRA", "budgetKg": "1000"}
    path = training_config(
        work, tiny_model, data, steps=6, every=100, carbon=raised, keep_after_success=False
    )
    s3_config(path, bucket, "s3-resume")
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "pod-2"))
    assert wait(start_trainer(path), work) == 0, trainer_log(work)[-3000:]
    resumed = result_of(work)
    assert resumed.outcome == "Succeeded"
    assert resumed.resumed_from_step == stopped.metrics.steps >= 1
    assert s3io.list_prefix(s3c, parse_s3(saved)) == []  # dropped after success


def test_a_killed_trainer_resumes_in_a_new_pod_from_the_checkpoints_it_copied_to_s3(
    tiny_model: Path, tmp_path: Path, bucket: str, s3c: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL (an OOM kill, a lost node) leaves the trainer no time to upload anything: the
    new pod, with an empty cache, resumes from what each checkpoint copied to S3 as it went."""
    data = training_data(tmp_path, 80)
    s3io.upload_file(s3c, data, parse_s3(f"s3://{bucket}/datasets/pets.jsonl"))
    work = tmp_path / "s3-killed"
    path = training_config(work, tiny_model, data, steps=400, every=5, keep_after_success=False)
    s3_config(path, bucket, "s3-killed")
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "pod-1"))
    proc = start_trainer(path)
    try:
        wait_for_event(proc, work, "checkpoint-mirrored")
    finally:
        proc.kill()
    proc.wait(timeout=30)
    mirrored = [int(p.rsplit("-", 1)[1]) for e in trainer_events(work, "checkpoint-mirrored")
                for p in e["published"]]  # fmt: skip
    assert mirrored and all(e["seconds"] < 30 for e in trainer_events(work, "checkpoint-mirrored"))

    # the same run (the same run key), stopped by a tiny carbon budget once it has resumed
    small = {"country": "FRA", "budgetKg": "1e-12"}
    again = training_config(work, tiny_model, data, steps=400, every=5, carbon=small)
    s3_config(again, bucket, "s3-killed")
    monkeypatch.setenv("MODEL_GARDEN_STAGING_DIR", str(tmp_path / "pod-2"))
    (work / "termination-log").write_text("")
    wait(start_trainer(again), work)
    resumed = result_of(work)
    assert resumed.reason == "CarbonBudgetExceeded", trainer_log(work)[-3000:]
    # the newest checkpoint whose upload completed: one the first pod logged, or a later one
    # whose upload finished between its log line and the kill
    assert resumed.resumed_from_step is not None and resumed.resumed_from_step >= mirrored[0]
    assert resumed.resumed_from_step % 5 == 0


def wait_for_event(proc: Any, work: Path, msg: str, timeout: float = 300) -> None:
    """Block until the trainer logged ``msg`` (it must still be running)."""
    deadline = time.monotonic() + timeout
    while not trainer_events(work, msg):
        assert proc.poll() is None, f"the trainer ended before {msg}: {trainer_log(work)[-3000:]}"
        assert time.monotonic() < deadline, f"no {msg} in time"
        time.sleep(0.05)
