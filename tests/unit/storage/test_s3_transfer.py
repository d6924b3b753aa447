"""Artifacts and datasets on a real S3-compatible server (moto): publish, digest, fetch, delete."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from model_garden.api.digest import artifact_digest
from model_garden.storage import s3 as s3io
from model_garden.storage.s3 import StorageError
from model_garden.storage.transfer import (
    MARKER,
    IncompleteUpload,
    delete_prefix,
    download,
    publish,
    remote_files,
    s3_digest,
    upload_files,
)
from model_garden.storage.uris import parse_s3


def make_artifact(root: Path) -> Path:
    """An adapter-like folder whose names sort differently as strings and as paths."""
    files = {
        "adapter_config.json": '{"r": 8}',
        "adapter_model.safetensors": "w" * 3000,
        "a/x.txt": "one",
        "a-b/x.txt": "two",
        "tok/nested/vocab.json": "{}",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_publish_writes_marker_last_and_digest_on_s3_equals_local(
    tmp_path: Path, bucket: str, s3c: Any
) -> None:
    local = make_artifact(tmp_path / "adapter")
    uri = f"s3://{bucket}/ns/chat/v1/adapter"
    published = publish(s3c, local, uri)
    expected = artifact_digest(local)
    assert published == expected
    assert s3_digest(s3c, uri, require_marker=True) == expected
    # without the marker's help (a folder uploaded by other tools) the digest is the same too
    assert s3_digest(s3c, f"s3://{bucket}/ns/chat/v1/adapter/", require_marker=False) == expected
    marker = s3io.read_bytes(s3c, parse_s3(f"{uri}/{MARKER}")).decode()
    assert marker.splitlines()[0].endswith("  a/x.txt")  # path order, not string order


def test_half_upload_is_not_taken_as_an_artifact(tmp_path: Path, bucket: str, s3c: Any) -> None:
    local = make_artifact(tmp_path / "adapter")
    uri = f"s3://{bucket}/m/v2/adapter"
    loc = parse_s3(uri)
    # an upload that stopped after two files: objects but no marker
    s3io.upload_file(s3c, local / "adapter_config.json", loc.child("adapter_config.json"))
    s3io.upload_file(s3c, local / "a/x.txt", loc.child("a/x.txt"))
    with pytest.raises(IncompleteUpload, match="never finished"):
        s3_digest(s3c, uri, require_marker=True)
    with pytest.raises(IncompleteUpload):
        download(s3c, uri, tmp_path / "got", require_marker=True)
    assert not (tmp_path / "got" / "a").exists()
    # re-publishing over an old complete version removes its marker first
    publish(s3c, local, uri)
    s3io.delete_keys(s3c, bucket, [loc.child(MARKER).key])
    with pytest.raises(IncompleteUpload):
        remote_files(s3c, uri, require_marker=True)


def test_objects_outside_the_marker_are_not_part_of_the_artifact(
    tmp_path: Path, bucket: str, s3c: Any
) -> None:
    local = make_artifact(tmp_path / "adapter")
    uri = f"s3://{bucket}/m/v3/adapter"
    publish(s3c, local, uri)
    s3io.put_bytes(s3c, parse_s3(f"{uri}/stray.bin"), b"left by an earlier attempt")
    assert s3_digest(s3c, uri, require_marker=True) == artifact_digest(local)
    got = download(s3c, uri, tmp_path / "got")
    assert not (got / "stray.bin").exists()
    assert artifact_digest(got) == artifact_digest(local)


def test_an_object_changed_after_publishing_fails_the_digest(
    tmp_path: Path, bucket: str, s3c: Any
) -> None:
    local = make_artifact(tmp_path / "adapter")
    uri = f"s3://{bucket}/m/v4/adapter"
    publish(s3c, local, uri)
    s3io.put_bytes(s3c, parse_s3(f"{uri}/a/x.txt"), b"tampered")
    with pytest.raises(StorageError, match=r"a/x.txt hashes to .* it changed after"):
        s3_digest(s3c, uri)


def test_dataset_file_and_folder_download(tmp_path: Path, bucket: str, s3c: Any) -> None:
    rows = '{"text": "hello"}\n{"text": "world"}\n'
    s3io.put_bytes(s3c, parse_s3(f"s3://{bucket}/data/train.jsonl"), rows.encode())
    s3io.put_bytes(s3c, parse_s3(f"s3://{bucket}/data/parts/0.jsonl"), rows.encode())
    s3io.put_bytes(s3c, parse_s3(f"s3://{bucket}/data/parts/1.jsonl"), b"")
    one = download(s3c, f"s3://{bucket}/data/train.jsonl", tmp_path / "one")
    assert one == tmp_path / "one" / "train.jsonl"
    assert one.read_text() == rows
    folder = download(s3c, f"s3://{bucket}/data/parts", tmp_path / "two")
    assert sorted(p.name for p in folder.iterdir()) == ["0.jsonl", "1.jsonl"]
    assert not list(folder.glob(".part-*"))


def test_missing_objects_and_buckets_are_named(tmp_path: Path, bucket: str, s3c: Any) -> None:
    with pytest.raises(StorageError, match=rf"s3://{bucket}/nothing/here: no object or folder"):
        download(s3c, f"s3://{bucket}/nothing/here", tmp_path)
    with pytest.raises(StorageError, match="s3://no-such-bucket-x/a: no such bucket"):
        s3_digest(s3c, "s3://no-such-bucket-x/a")


def test_delete_prefix_removes_the_artifact_and_refuses_a_bucket(
    tmp_path: Path, bucket: str, s3c: Any
) -> None:
    local = make_artifact(tmp_path / "adapter")
    publish(s3c, local, f"s3://{bucket}/m/v1/adapter")
    publish(s3c, local, f"s3://{bucket}/m/v10/adapter")
    assert delete_prefix(s3c, f"s3://{bucket}/m/v1") == 6  # five files and the marker
    left = {k for k, _ in s3io.list_prefix(s3c, parse_s3(f"s3://{bucket}"))}
    assert left and all(k.startswith("m/v10/") for k in left)  # v10 shares the prefix "m/v1"
    with pytest.raises(StorageError, match="whole bucket"):
        delete_prefix(s3c, f"s3://{bucket}")


def test_upload_files_skips_published_folders(tmp_path: Path, bucket: str, s3c: Any) -> None:
    out = tmp_path / "out"
    make_artifact(out / "adapter")
    (out / "result.json").write_text("{}")
    publish(s3c, out / "adapter", f"s3://{bucket}/o/adapter")
    assert upload_files(s3c, out, f"s3://{bucket}/o", skip=[out / "adapter"]) == 1
    keys = {k for k, _ in s3io.list_prefix(s3c, parse_s3(f"s3://{bucket}/o"))}
    assert "o/result.json" in keys and len(keys) == 7


class CountingGets:
    """The real client, counting the object reads a download makes (the bytes still come from
    the S3 server)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.gets: list[str] = []

    def get_object(self, **kwargs: Any) -> Any:
        self.gets.append(kwargs["Key"])
        return self.client.get_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_shared_cache_keeps_the_files_it_has_and_fetches_a_changed_one(
    tmp_path: Path, bucket: str, s3c: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A second pod on the same model cache (spec.modelCache) reads nothing the first fetched;
    a file whose bytes differ from the marker's hash (same size) is fetched again."""
    uri = f"s3://{bucket}/ns/chat/v1/adapter"
    publish(s3c, make_artifact(tmp_path / "adapter"), uri)
    cache = tmp_path / "cache"
    first = CountingGets(s3c)
    download(first, uri, cache, require_marker=True)
    assert len(first.gets) == 6  # the marker and five files

    second = CountingGets(s3c)
    with caplog.at_level(logging.INFO, logger="model_garden.storage"):
        download(second, uri, cache, require_marker=True)
    assert second.gets == ["ns/chat/v1/adapter/.model-garden-manifest"]
    assert f"fetched {uri}: 0 file(s) downloaded, 5 kept from the cache" in caplog.messages

    (cache / "adapter_model.safetensors").write_text("x" * 3000)  # same size, other bytes
    third = CountingGets(s3c)
    download(third, uri, cache, require_marker=True)
    assert third.gets[1:] == ["ns/chat/v1/adapter/adapter_model.safetensors"]
    assert artifact_digest(cache) == s3_digest(s3c, uri, require_marker=True)
