"""The artifact verifier and URI-to-path translation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_garden.operator.storage import Location, Mounts, UnsafePath, join_uri, resolve
from model_garden.operator.verify import digest_directory, main


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "pvc://artifacts/team/chat/v1",
            Location("/mnt/model-garden/artifacts/team/chat/v1", "artifacts"),
        ),
        ("pvc://artifacts", Location("/mnt/model-garden/artifacts", "artifacts")),
        ("file:///data/x.jsonl", Location("/data/x.jsonl")),
        ("s3://bucket/key", Location("s3://bucket/key")),
        ("Qwen/Qwen2.5-0.5B", Location("Qwen/Qwen2.5-0.5B")),
    ],
)
def test_uri_resolves_to_a_fixed_mount_path(uri: str, expected: Location) -> None:
    assert resolve(uri) == expected


def test_a_claim_is_one_volume_writable_if_any_path_of_it_is_written() -> None:
    mounts = Mounts()
    mounts.add(resolve("pvc://shared/data.jsonl"))
    mounts.add(resolve("pvc://shared/out"), writable=True)
    assert mounts.volumes() == [
        {
            "name": "claim-shared",
            "persistentVolumeClaim": {"claimName": "shared", "readOnly": False},
        }
    ]
    assert join_uri("pvc://c/", "ns", "/m/") == "pvc://c/ns/m"


def test_a_trainer_mounts_only_its_paths_writable_only_where_it_writes() -> None:
    """Item 9: not the whole claim read-write; each path by subPath, reads read-only."""
    mounts = Mounts()
    base = mounts.add(resolve("pvc://artifacts/team/base/v1"))
    data = mounts.add(resolve("pvc://data/chat.jsonl"))
    out = mounts.add(resolve("pvc://artifacts/team/chat/v2"), writable=True)
    ckpt = mounts.add(resolve("pvc://artifacts/team/jobs/tune/checkpoints"), writable=True)
    assert (base, data, out) == (
        "/mnt/model-garden/artifacts/team/base/v1",
        "/mnt/model-garden/data/chat.jsonl",
        "/mnt/model-garden/artifacts/team/chat/v2",
    )
    by_path = {m["mountPath"]: m for m in mounts.volume_mounts()}
    assert {p: (m["subPath"], m["readOnly"]) for p, m in by_path.items()} == {
        base: ("team/base/v1", True),
        data: ("chat.jsonl", True),
        out: ("team/chat/v2", False),
        ckpt: ("team/jobs/tune/checkpoints", False),
    }
    assert "/mnt/model-garden/artifacts" not in by_path  # never the whole claim
    assert {
        v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"]["readOnly"]
        for v in mounts.volumes()
    } == {"artifacts": False, "data": True}


def test_writable_sub_paths_are_made_by_the_pods_own_user_before_kubelet_makes_them() -> None:
    """Seen on the real node: kubelet made the missing output folder as root (0750) and the
    trainer (uid 1000) died with Permission denied. An init container makes them first."""
    mounts = Mounts()
    mounts.add(resolve("pvc://artifacts/team/base/v1"))
    out = mounts.add(resolve("pvc://artifacts/team/chat/v2"), writable=True)
    ckpt = mounts.add(resolve("pvc://artifacts/team/jobs/tune/checkpoints"), writable=True)
    security = {"runAsNonRoot": True, "readOnlyRootFilesystem": True}
    init = mounts.prepare_container("trainer:1", security)
    assert init is not None
    assert init["command"] == ["mkdir", "-p", "--", out, ckpt]
    assert init["image"] == "trainer:1" and init["securityContext"] == security
    assert init["volumeMounts"] == [
        {"name": "claim-artifacts", "mountPath": "/mnt/model-garden/artifacts"}
    ]
    assert init["resources"]["requests"] == init["resources"]["limits"]  # Guaranteed QoS kept
    readers = Mounts()
    readers.add(resolve("pvc://artifacts/team/chat/v1"))
    assert readers.prepare_container("server:1", security) is None


def test_a_reader_only_pod_has_read_only_volumes() -> None:
    mounts = Mounts()
    mounts.add(resolve("pvc://artifacts/team/chat/v1"))
    mounts.add(resolve("pvc://artifacts/team/tone/v1"))
    assert [v["persistentVolumeClaim"]["readOnly"] for v in mounts.volumes()] == [True]
    assert all(m["readOnly"] for m in mounts.volume_mounts())
    assert mounts.claims == {"artifacts": False}


def test_paths_covered_by_a_mount_above_are_not_mounted_twice() -> None:
    mounts = Mounts()
    mounts.add(resolve("pvc://c/a/b"))  # read inside a written folder: covered
    mounts.add(resolve("pvc://c/a"), writable=True)
    mounts.add(resolve("pvc://c/a"))  # the same path read too: stays writable
    mounts.add(resolve("pvc://d/x/y"), writable=True)  # written inside a read folder: on top
    mounts.add(resolve("pvc://d/x"))
    assert [(m["mountPath"], m["readOnly"]) for m in mounts.volume_mounts()] == [
        ("/mnt/model-garden/c/a", False),
        ("/mnt/model-garden/d/x", True),
        ("/mnt/model-garden/d/x/y", False),
    ]


def test_a_whole_claim_is_mounted_read_only_without_sub_path() -> None:
    mounts = Mounts()
    mounts.add_claim("artifacts")
    mounts.add(resolve("pvc://artifacts/team/chat/v1"))
    assert mounts.volume_mounts() == [
        {"name": "claim-artifacts", "mountPath": "/mnt/model-garden/artifacts", "readOnly": True}
    ]


@pytest.mark.parametrize("uri", ["pvc://c/../other", "pvc://c/a/../../x"])
def test_a_path_leaving_its_claim_is_refused(uri: str) -> None:
    with pytest.raises(UnsafePath, match=r"'\.\.' may not appear"):
        Mounts().add(resolve(uri))


def _model(root: Path) -> Path:
    root.mkdir()
    (root / "config.json").write_text("{}")
    (root / "model.safetensors").write_bytes(b"\0" * 10)
    return root


def test_verify_reports_size_and_a_stable_digest(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    log = tmp_path / "termination-log"
    assert main(["--path", str(model), "--termination-log", str(log)]) == 0
    report = json.loads(log.read_text())
    assert report["sizeBytes"] == 12 and report["files"] == 2
    assert report["digest"] == digest_directory(model)[1] and report["digest"].startswith("sha256:")


def test_verify_names_what_is_missing(tmp_path: Path) -> None:
    model = _model(tmp_path / "m")
    log = tmp_path / "termination-log"
    assert main(["--path", str(model), "--format", "adapter", "--termination-log", str(log)]) == 1
    assert json.loads(log.read_text()) == {"error": f"adapter_config.json missing in {model}"}


def test_claim_volume_names_are_labels_and_distinct_for_distinct_claims() -> None:
    import re

    from model_garden.operator.storage import claim_volume_name

    claims = ["data", "data.v1", "data-v1", "a" * 70 + "x", "a" * 70 + "y", "b" * 253]
    names = [claim_volume_name(c) for c in claims]
    assert names[0] == "claim-data"
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
