"""``mg train --local`` and the reads after it, on the local store with the fake trainer."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from model_garden.api import FineTuneJob, ModelVersion
from model_garden.local import pods
from model_garden.local.store import LocalStore

from .conftest import Env, train_args


def test_train_wait_produces_a_verified_version_and_reports_it(trained: Env) -> None:
    store = LocalStore(trained.home)
    (job,) = store.list(FineTuneJob)
    conds = {c.type: (c.status, c.reason) for c in job.status.conditions}
    assert conds["Succeeded"] == ("True", "Completed")
    assert conds["Failed"] == ("False", "Completed")
    assert job.status.model_version == "m-v1"
    assert job.status.carbon is not None and job.status.carbon.emissions_kg > 0
    (mv,) = store.list(ModelVersion)
    ready = next(c for c in mv.status.conditions if c.type == "Ready")
    # the operator's verification Job ran as a local process and hashed the files
    assert (ready.status, ready.reason) == ("True", "Verified")
    artifact = store.local_path(mv.spec.artifact.uri)
    assert artifact == trained.home / "claims/model-garden-artifacts/default/m/v1/merged"
    assert (artifact / "model.safetensors").is_file()
    assert mv.status.digest and mv.status.digest == mv.spec.artifact.digest


def test_wait_prints_progress_and_what_was_made(env: Env) -> None:
    result = env.run(*train_args(env, "j1"), "--wait")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "finetunejob/j1 created" in out
    assert "step 4/4" in out and "CO2e" in out
    assert "FineTuneJob j1 succeeded: ModelVersion m-v1, eval loss 6.13 → 1.52" in out
    assert "pvc://model-garden-artifacts/default/m/v1/merged (Verified)" in out


def test_every_read_in_every_format(trained: Env) -> None:
    for args in (
        ["jobs", "list"],
        ["versions", "list"],
        ["jobs", "get", "j1"],
        ["versions", "get", "m-v1"],
    ):
        as_json = trained.run(*args, "-o", "json")
        as_yaml = trained.run(*args, "-o", "yaml")
        table = trained.run(*args)
        assert as_json.exit_code == as_yaml.exit_code == table.exit_code == 0, args
        doc = json.loads(as_json.stdout)
        assert yaml.safe_load(as_yaml.stdout) == doc
        items = doc["items"] if doc.get("kind") == "List" else [doc]
        assert [i["metadata"]["name"] for i in items] == ["j1" if args[0] == "jobs" else "m-v1"]
    listing = trained.run("jobs", "list").stdout.splitlines()
    assert listing[0].split() == [
        "NAME",
        "STATE",
        "STEP",
        "LOSS",
        "EVAL",
        "LOSS",
        "VERSION",
        "CO2E",
        "AGE",
    ]
    assert listing[-1].split()[:6] == ["j1", "Succeeded", "4/4", "1.61", "1.52", "m-v1"]
    versions = trained.run("versions", "list").stdout.splitlines()
    assert versions[-1].split()[:7] == ["m-v1", "m", "1", "merged", "none", "True", "(Verified)"]
    shown = trained.run("jobs", "get", "j1").stdout
    assert "event ModelVersionCreated" in shown and "Succeeded" in shown


def test_logs_promote_and_delete(trained: Env) -> None:
    logs = trained.run("jobs", "logs", "j1", "--tail", "1")
    assert logs.exit_code == 0 and logs.stdout.strip() == "step 4"
    promoted = trained.run("versions", "promote", "m-v1", "--stage", "staging")
    assert promoted.exit_code == 0 and "none → staging" in promoted.stdout
    store = LocalStore(trained.home)
    assert store.get("ModelVersion", "m-v1")["spec"]["stage"] == "staging"  # type: ignore[index]
    assert trained.run("versions", "delete", "m-v1").exit_code == 0
    assert store.get("ModelVersion", "m-v1") is None
    assert trained.run("jobs", "delete", "j1").exit_code == 0
    for kind in ("FineTuneJob", "Job", "ConfigMap", "Pod"):
        assert store.list_raw(kind) == [], kind  # the job's children went with it


def test_a_failed_trainer_fails_the_job_at_once_as_the_operator_says(env: Env) -> None:
    result = env.run(*train_args(env, "bad"), "--wait", FAKE_TRAINER_FAIL="1")
    assert result.exit_code == 1
    assert "FineTuneJob bad failed: DatasetError: line 3: no text field" in result.stdout
    store = LocalStore(env.home)
    job = store.get("FineTuneJob", "bad") or {}
    conds = {c["type"]: (c["status"], c["reason"]) for c in job["status"]["conditions"]}
    assert conds["Failed"] == ("True", "DatasetError")
    assert conds["Succeeded"] == ("False", "DatasetError")
    # exit 3 is in the Job's podFailurePolicy: no retry, one pod only
    (pod,) = store.list_raw("Pod")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert store.list(ModelVersion) == []


def test_cancel_stops_the_trainer_and_delete_leaves_nothing_running(env: Env) -> None:
    started = env.run(*train_args(env, "long"), FAKE_TRAINER_SECONDS="120")
    assert started.exit_code == 0, started.output
    store = LocalStore(env.home)
    (pod,) = store.list_raw("Pod")
    name = pod["metadata"]["name"]
    assert pods.running(store, name)
    assert env.run("jobs", "cancel", "long").exit_code == 0
    shim = pods.shim_pid(store, name)
    assert shim is not None
    _wait_gone(store, name)
    env.run("jobs", "list")  # one more pass: the stopped pod is removed
    job = store.get("FineTuneJob", "long") or {}
    running = next(c for c in job["status"]["conditions"] if c["type"] == "Running")
    assert (running["status"], running["reason"]) == ("False", "Suspended")
    assert store.get("Job", "long-train")["spec"]["suspend"] is True  # type: ignore[index]
    assert env.run("jobs", "delete", "long").exit_code == 0
    assert store.list_raw("Job") == [] and store.list_raw("Pod") == []


def _wait_gone(store: LocalStore, pod: str, timeout: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout
    while pods.running(store, pod):
        assert time.monotonic() < deadline, "the trainer did not stop"
        time.sleep(0.2)


def test_two_concurrent_trains_on_one_store_both_finish(env: Env) -> None:
    cmd = [sys.executable, "-m", "model_garden.cli.main"]
    procs = [
        subprocess.Popen(
            [*cmd, *train_args(env, f"c{i}"), "--wait"],
            env={**_os_env(), **env.vars},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    store = LocalStore(env.home)
    versions = sorted(mv.spec.version for mv in store.list(ModelVersion))
    assert versions == [1, 2], "the lock serialised the admissions: two distinct versions"
    for path in (env.home / "objects").rglob("*"):
        if path.is_file():
            assert path.suffix == ".yaml", f"left behind: {path}"
            assert isinstance(yaml.safe_load(path.read_text()), dict), path


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_artifacts_land_where_the_operator_puts_them_on_a_claim(trained: Env) -> None:
    claim = trained.home / "claims" / "model-garden-artifacts" / "default"
    assert (claim / "m" / "v1" / "merged" / "config.json").is_file()
    config = json.loads(
        next(
            (trained.home / "pods").glob("j1-train-*/volumes/config/training-config.json")
        ).read_text()
    )
    assert config["runtime"]["outputDir"] == str(claim / "m" / "v1")
    assert config["runtime"]["terminationMessagePath"].startswith(str(trained.home / "pods"))
    launch = json.loads(next((trained.home / "pods").glob("j1-train-*/launch.json")).read_text())
    pod_dir = next((trained.home / "pods").glob("j1-train-*"))
    # the pod's emptyDirs: HOME and the temp dir are its own, not this machine's /tmp
    scratch = LocalStore(trained.home).scratch_dir(pod_dir.name)
    assert launch["env"]["TMPDIR"] == launch["env"]["HOME"] == str(scratch / "tmp")
    assert launch["env"]["HF_HOME"] == str(scratch / "cache/huggingface")
    assert len(launch["env"]["TMPDIR"]) < 50, "room for vLLM's IPC socket paths (< 108 bytes)"


def test_deleting_a_running_job_stops_its_trainer_before_returning(env: Env) -> None:
    assert env.run(*train_args(env, "run"), FAKE_TRAINER_SECONDS="120").exit_code == 0
    store = LocalStore(env.home)
    (pod,) = store.list_raw("Pod")
    assert pods.running(store, pod["metadata"]["name"])
    result = env.run("jobs", "delete", "run")
    assert result.exit_code == 0, result.output
    assert not pods.running(store, pod["metadata"]["name"])
    for kind in ("FineTuneJob", "Job", "ConfigMap", "Pod"):
        assert store.list_raw(kind) == [], kind
