"""The verify program on S3: the digest of streamed objects equals the local digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_garden.api.digest import artifact_digest
from model_garden.operator.verify import main
from model_garden.storage import s3 as s3io
from model_garden.storage.transfer import publish
from model_garden.storage.uris import parse_s3


def adapter(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text('{"r": 8}')
    (root / "adapter_model.safetensors").write_bytes(b"\x00" * 4096)
    (root / "tokenizer.json").write_text("{}")
    return root


def verify(tmp_path: Path, *argv: str) -> tuple[int, dict[str, Any]]:
    log = tmp_path / "termination-log"
    code = main([*argv, "--termination-log", str(log)])
    return code, json.loads(log.read_text())


def test_verify_hashes_s3_objects_like_local_files(tmp_path: Path, bucket: str, s3c: Any) -> None:
    local = adapter(tmp_path / "adapter")
    uri = f"s3://{bucket}/team/chat/v1/adapter"
    publish(s3c, local, uri)
    code, report = verify(tmp_path, "--path", uri, "--format", "adapter", "--require-manifest")
    assert code == 0, report
    expected = artifact_digest(local)
    assert report["digest"] == expected.digest
    assert (report["sizeBytes"], report["files"]) == (expected.size_bytes, 3)
    # the same files verified locally give the same report
    code, local_report = verify(tmp_path, "--path", str(local), "--format", "adapter")
    assert code == 0 and local_report["digest"] == report["digest"]


def test_verify_refuses_a_half_upload_and_a_wrong_format(
    tmp_path: Path, bucket: str, s3c: Any
) -> None:
    local = adapter(tmp_path / "adapter")
    uri = f"s3://{bucket}/team/chat/v2/adapter"
    loc = parse_s3(uri)
    s3io.upload_file(s3c, local / "adapter_config.json", loc.child("adapter_config.json"))
    code, report = verify(tmp_path, "--path", uri, "--format", "adapter", "--require-manifest")
    assert code == 1 and "upload never finished" in report["error"]
    publish(s3c, local, uri)
    code, report = verify(tmp_path, "--path", uri, "--format", "merged")
    assert code == 1 and report["error"] == f"config.json missing in {uri}"
    code, report = verify(tmp_path, "--path", f"s3://{bucket}/none", "--format", "merged")
    assert code == 1 and "no object or folder there" in report["error"]
