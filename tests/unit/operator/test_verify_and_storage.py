"""The artifact verifier and URI-to-path translation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_garden.operator.storage import Location, Mounts, join_uri, resolve
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


def test_a_claim_is_mounted_once_writable_if_any_use_writes() -> None:
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
