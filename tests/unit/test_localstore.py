"""Local mode keeps resources as YAML files: atomic writes, a lock, the API server's bookkeeping."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from harness.invalid_cases import MV
from model_garden.api import ModelVersion
from model_garden.local.store import AlreadyExists, LocalStore, default_home, merge_patch


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


def test_home_is_the_override_else_the_xdg_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_GARDEN_HOME", "/srv/mg")
    assert default_home() == Path("/srv/mg")
    monkeypatch.delenv("MODEL_GARDEN_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert default_home() == Path("/data/model-garden")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_home() == Path.home() / ".local/share/model-garden"


def test_create_stamps_like_the_api_server_and_refuses_a_taken_name(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    made = store.create(body)
    meta = made["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert (meta["namespace"], meta["generation"]) == ("default", 1)
    with pytest.raises(AlreadyExists):
        store.create(body)


def test_patch_merges_and_bumps_generation_only_for_spec(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "j"},
            "spec": {"suspend": False},
        }
    )
    after = store.patch("Job", "j", {"status": {"active": 1}})
    assert after is not None and after["metadata"]["generation"] == 1
    after = store.patch("Job", "j", {"spec": {"suspend": True}, "status": {"active": None}})
    assert after is not None and after["metadata"]["generation"] == 2
    assert after["status"] == {} and after["spec"] == {"suspend": True}
    assert store.patch("Job", "missing", {"spec": {}}) is None


def test_merge_patch_is_rfc_7386() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) == {
        "a": {"c": 2, "e": 3},
        "d": [2],
    }


def _bump(home: str, rounds: int) -> None:
    store = LocalStore(Path(home))
    for _ in range(rounds):
        with store.lock():  # read-modify-write: lost updates without the lock
            current = store.get("ConfigMap", "counter") or {}
            count = int((current.get("data") or {}).get("n", "0"))
            store.patch("ConfigMap", "counter", {"data": {"n": str(count + 1)}})


def test_the_lock_serialises_writers_in_separate_processes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "counter"},
            "data": {"n": "0"},
        }
    )
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_bump, args=(str(tmp_path), 25)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0] * 4
    assert (store.get("ConfigMap", "counter") or {})["data"]["n"] == "100"


def test_claim_paths_map_to_the_stores_claim_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.local_path("pvc://arts/default/m/v1") == tmp_path / "claims/arts/default/m/v1"
    assert store.local_path("file:///srv/data.jsonl") == Path("/srv/data.jsonl")
    assert store.host_path("/mnt/model-garden/arts/default/m") == tmp_path / "claims/arts/default/m"
    assert store.host_path("/mnt/model-garden/arts") == tmp_path / "claims/arts"
    assert store.host_path("/srv/model") == Path("/srv/model")


def test_local_mode_refuses_autoscaling_and_traffic_with_the_reason(tmp_path: Path) -> None:
    """One machine runs one server: a split or an autoscaler would be planned as objects
    nothing here runs, so the deployment says why it is not served instead."""
    from model_garden.local.controller import LOCAL_SCALING_REFUSAL, LocalController
    from model_garden.local.store import LocalStore

    store = LocalStore(tmp_path / "home")
    body = {
        "apiVersion": "modelgarden.dev/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": "bot", "namespace": "default"},
        "spec": {"modelVersion": "m-v1", "autoscaling": {"minReplicas": 0, "maxReplicas": 3,
                 "target": {"metric": "waitingRequests", "value": 4}}},
    }  # fmt: skip
    store.create(body)
    LocalController(store).reconcile()
    (idep,) = store.list_raw("InferenceDeployment")
    ready = next(c for c in idep["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "False", "NotSupportedLocally", LOCAL_SCALING_REFUSAL,
    )  # fmt: skip
    assert store.list_raw("Deployment") == []
