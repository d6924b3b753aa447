"""Parse the remote URIs pods fetch: ``s3://<bucket>/<key>`` and ``hf://<org>/<name>@<revision>``.

Pure functions: the operator (to decide what a pod needs) and the pods (to fetch) share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

S3_SCHEME = "s3://"
HF_SCHEME = "hf://"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_HF = re.compile(
    r"^hf://(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?)@(?P<rev>[^\s@/][^\s@]*)$"
)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str
    """The object key or key prefix, without a leading or trailing ``/`` (``""``: the bucket)."""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"

    def child(self, rel: str) -> S3Location:
        return S3Location(self.bucket, "/".join(p for p in (self.key, rel.strip("/")) if p))

    @property
    def prefix(self) -> str:
        """The key prefix of the objects "in" this location as a folder."""
        return f"{self.key}/" if self.key else ""


@dataclass(frozen=True)
class HubRef:
    repo: str
    revision: str

    @property
    def uri(self) -> str:
        return f"hf://{self.repo}@{self.revision}"


def is_s3(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith(S3_SCHEME)


def is_hf(uri: str | None) -> bool:
    return bool(uri) and str(uri).startswith(HF_SCHEME)


def is_remote(uri: str | None) -> bool:
    """Whether a pod must fetch ``uri`` (s3:// or hf://) rather than read a mounted path."""
    return is_s3(uri) or is_hf(uri)


def parse_s3(uri: str) -> S3Location:
    """``s3://bucket/a/b/`` -> S3Location("bucket", "a/b"); a bad bucket name is refused."""
    if not is_s3(uri):
        raise ValueError(f"{uri!r} is not an s3://<bucket>/<path> URI")
    bucket, _, key = uri.removeprefix(S3_SCHEME).partition("/")
    if not _BUCKET.match(bucket):
        raise ValueError(
            f"{uri!r}: bucket {bucket!r} is not an S3 bucket name (3-63 lowercase letters,"
            " digits, '.' and '-')"
        )
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{uri!r}: '..' may not appear in an s3 key")
    return S3Location(bucket, "/".join(parts))


def parse_hf(uri: str) -> HubRef:
    """``hf://org/name@rev`` -> HubRef("org/name", "rev"); the revision is required, so what was
    verified is what is served (a branch can move: pin a commit for reproducibility)."""
    match = _HF.match(uri)
    if not match:
        raise ValueError(
            f"{uri!r} is not hf://<org>/<name>@<revision> (the revision — a commit, tag or"
            " branch — is required)"
        )
    return HubRef(match.group("repo"), match.group("rev"))
