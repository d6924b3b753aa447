"""Retention: a succeeded job's checkpoints, and a deleted version's artifact (Retain|Delete)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_garden.operator.modelversion.plan import ModelVersionWorld, plan_modelversion
from model_garden.storage import s3 as s3io
from model_garden.storage.retention import Refused, delete_artifact, drop_checkpoints, main
from model_garden.storage.transfer import publish
from model_garden.storage.uris import parse_s3
from model_garden.training import ownership
from unit.operator.factories import NOW, SETTINGS, conditions, mv

FINALIZER = "modelgarden.dev/in-use-protection"


def run_folder(root: Path, name: str, owner: str, steps: list[int]) -> Path:
    folder = ownership.claim(root / name, owner)
    for step in steps:
        (folder / f"checkpoint-{step}").mkdir()
        (folder / f"checkpoint-{step}" / "COMPLETE").write_text('{"files": {}}')
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(f'{{"step": {step}}}')
    return folder


def test_drop_checkpoints_removes_only_this_jobs_runs_oldest_first(tmp_path: Path) -> None:
    ours = run_folder(tmp_path, "run-a", "uid-1", [10, 20])
    theirs = run_folder(tmp_path, "run-b", "uid-2", [5])
    removed = drop_checkpoints(tmp_path, "uid-1")
    assert [p.name for p in removed] == ["checkpoint-10", "checkpoint-20", "run-a"]
    assert not ours.exists() and (theirs / "checkpoint-5").is_dir()
    assert drop_checkpoints(tmp_path / "absent", "uid-1") == []


def test_delete_artifact_local_and_s3(tmp_path: Path, bucket: str, s3c: Any) -> None:
    art = tmp_path / "team" / "chat" / "v1" / "adapter"
    art.mkdir(parents=True)
    (art / "a.json").write_text("{}")
    (art / "w.bin").write_bytes(b"1")
    assert delete_artifact(str(art)) == 2 and not art.exists()
    assert delete_artifact(str(art)) == 0  # a retried Job succeeds
    with pytest.raises(Refused):
        delete_artifact("/mnt")
    publish(s3c, tmp_path / "team", f"s3://{bucket}/team")
    s3io.put_bytes(s3c, parse_s3(f"s3://{bucket}/keep.txt"), b"x")
    assert delete_artifact(f"s3://{bucket}/team") == 1  # the marker (the folder held no file)
    assert [k for k, _ in s3io.list_prefix(s3c, parse_s3(f"s3://{bucket}"))] == ["keep.txt"]
    assert delete_artifact("hf://org/name@main") == 0


def test_cleanup_program_reports_in_the_termination_log(tmp_path: Path) -> None:
    log = tmp_path / "log"
    target = tmp_path / "a" / "b" / "c"
    target.mkdir(parents=True)
    (target / "f").write_text("x")
    assert main(["--target", str(target), "--termination-log", str(log)]) == 0
    assert json.loads(log.read_text()) == {"deleted": 1}
    assert main(["--target", "relative/path", "--termination-log", str(log)]) == 1
    assert "refusing" in json.loads(log.read_text())["error"]


# --- the ModelVersion planner ----------------------------------------------------------------


def verify_job_of(plan: Any) -> dict[str, Any]:
    (job,) = plan.create
    return job


def test_s3_artifact_is_verified_with_the_storage_secret() -> None:
    body = mv(ready=False, uri="s3://models/team/chat/v1/merged")
    body["spec"]["storageSecret"] = "minio"
    body["spec"]["source"] = {"fineTuneJob": "tune"}
    plan = plan_modelversion(body, ModelVersionWorld(), SETTINGS, NOW)
    assert conditions(plan.status)["Ready"] == ("False", "Verifying")
    pod = verify_job_of(plan)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:2] == ["--path", "s3://models/team/chat/v1/merged"]
    assert "--require-manifest" in container["args"]  # a job's output must be complete
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "minio"
    assert not any("persistentVolumeClaim" in v for v in pod["volumes"])


def test_hf_artifact_is_downloaded_and_verified_without_require_manifest() -> None:
    body = mv(ready=False, digest=False, uri="hf://org/name@abc123")
    plan = plan_modelversion(body, ModelVersionWorld(), SETTINGS, NOW)
    (container,) = verify_job_of(plan)["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["--path", "hf://org/name@abc123"]
    assert "--require-manifest" not in container["args"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HF_HOME"].startswith("/var/cache/model-garden")  # the cache volume


def deleting(retention: str, uri: str | None = None) -> dict[str, Any]:
    body = mv(deleting=True, **({"uri": uri} if uri else {}))
    body["spec"]["retention"] = retention
    return body


def finalizer_removed(plan: Any) -> bool:
    return any(FINALIZER not in p["metadata"].get("finalizers", [FINALIZER]) for _, p in plan.patch)


def job(name: str, finished: str | None = None) -> dict[str, Any]:
    status = {"conditions": [{"type": finished, "status": "True"}]} if finished else {}
    return {"metadata": {"name": name}, "status": status}


def cleanup_pod(report: dict[str, Any], code: int) -> dict[str, Any]:
    term = {"exitCode": code, "message": json.dumps(report)}
    return {
        "metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"containerStatuses": [{"name": "cleanup", "state": {"terminated": term}}]},
    }


def test_retain_lets_the_version_go_and_keeps_the_files() -> None:
    plan = plan_modelversion(deleting("Retain"), ModelVersionWorld(), SETTINGS, NOW)
    assert finalizer_removed(plan) and plan.create == []


def test_delete_runs_a_cleanup_job_after_the_verify_job_and_then_lets_go() -> None:
    body = deleting("Delete")
    step1 = plan_modelversion(
        body, ModelVersionWorld(verify_job=job("chat-v1-verify")), SETTINGS, NOW
    )
    assert [r.name for r in step1.delete] == ["chat-v1-verify"] and not finalizer_removed(step1)
    step2 = plan_modelversion(body, ModelVersionWorld(), SETTINGS, NOW)
    (cleanup,) = step2.create
    assert cleanup["metadata"]["name"] == "chat-v1-cleanup" and not finalizer_removed(step2)
    pod = cleanup["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    target = "/mnt/model-garden/artifacts/team/chat/v1/merged"
    assert container["args"][:2] == ["--target", target]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "claim-artifacts"]
    assert mount["subPath"] == "team/chat/v1" and mount["readOnly"] is False  # the parent
    running = ModelVersionWorld(verify_job=job("chat-v1-cleanup"))
    assert not finalizer_removed(plan_modelversion(body, running, SETTINGS, NOW))
    done = ModelVersionWorld(
        verify_job=job("chat-v1-cleanup", "Complete"),
        verify_pods=[cleanup_pod({"deleted": 3}, 0)],
    )
    step3 = plan_modelversion(body, done, SETTINGS, NOW)
    assert finalizer_removed(step3)
    assert any(e.reason == "ArtifactDeleted" and "3 files" in e.message for e in step3.events)


def test_a_failed_cleanup_keeps_the_version_and_says_why() -> None:
    failed = ModelVersionWorld(
        verify_job=job("chat-v1-cleanup", "Failed"),
        verify_pods=[cleanup_pod({"error": "s3://b/x: access denied"}, 1)],
    )
    plan = plan_modelversion(deleting("Delete", "s3://b/x"), failed, SETTINGS, NOW)
    assert not finalizer_removed(plan)
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    assert ready["reason"] == "CleanupFailed" and "access denied" in ready["message"]
    assert "Retain" in ready["message"]


@pytest.mark.parametrize("uri", ["hf://org/name@main", "pvc://artifacts"])
def test_delete_skips_what_must_not_be_deleted(uri: str) -> None:
    plan = plan_modelversion(deleting("Delete", uri), ModelVersionWorld(), SETTINGS, NOW)
    assert finalizer_removed(plan) and plan.create == []
    assert conditions(plan.status)["Ready"] == ("False", "CleanupSkipped")
