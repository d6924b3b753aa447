"""URI parsing and the pod env for a storage Secret (pure functions)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from model_garden.api.modelversion import Artifact
from model_garden.storage.credentials import s3_env
from model_garden.storage.uris import HubRef, S3Location, parse_hf, parse_s3


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/a/b/", S3Location("bucket", "a/b")),
        ("s3://bucket", S3Location("bucket", "")),
        ("s3://my.bucket-1//x/./y", S3Location("my.bucket-1", "x/y")),
    ],
)
def test_parse_s3(uri: str, expected: S3Location) -> None:
    assert parse_s3(uri) == expected


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("s3://B/x", "bucket 'B' is not an S3 bucket name"),
        ("s3://bucket/a/../b", "'..' may not appear"),
        ("pvc://c/x", "is not an s3://"),
    ],
)
def test_parse_s3_refuses_with_a_reason(uri: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_s3(uri)


def test_parse_hf_requires_a_revision() -> None:
    assert parse_hf("hf://Qwen/Qwen2.5-0.5B@a1b2c3") == HubRef("Qwen/Qwen2.5-0.5B", "a1b2c3")
    assert parse_hf("hf://gpt2@main").uri == "hf://gpt2@main"
    with pytest.raises(ValueError, match="revision .* is required"):
        parse_hf("hf://Qwen/Qwen2.5-0.5B")


def test_artifact_uri_accepts_hf_with_revision_only() -> None:
    ok = Artifact(uri="hf://org/name@v1.0", format="merged")
    assert ok.uri == "hf://org/name@v1.0"
    with pytest.raises(ValidationError, match=r"hf://<org>/<name>@<revision>"):
        Artifact(uri="hf://org/name", format="merged")


def test_secret_env_uses_secret_key_refs_and_never_values() -> None:
    env = s3_env("minio-creds")
    names = [e["name"] for e in env]
    assert names[:2] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert "AWS_ENDPOINT_URL" in names and "HF_TOKEN" not in names
    assert all("value" not in e for e in env)
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env}
    assert refs["AWS_ACCESS_KEY_ID"] == {
        "name": "minio-creds",
        "key": "AWS_ACCESS_KEY_ID",
        "optional": False,
    }
    assert refs["AWS_ENDPOINT_URL"]["optional"] is True
    assert [e["name"] for e in s3_env("c", hub=True)][-1] == "HF_TOKEN"
    assert s3_env(None) == []
