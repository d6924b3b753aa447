"""The one place that talks to S3 (boto3): list, stream, download, upload and delete objects.

Credentials and endpoint come from the standard AWS variables (see :mod:`.credentials`), so the
same code reaches AWS, MinIO, Ceph or a test's moto server. Every failure becomes a
:class:`StorageError` whose message names the URI and what to check, never a credential.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .uris import S3Location

CHUNK = 1 << 20


class StorageError(RuntimeError):
    """Remote storage could not be read or written; the message is safe to show and log."""


def client() -> Any:
    """An S3 client from the environment; path-style addressing for a custom endpoint, since
    S3-compatible servers (MinIO, Ceph, moto) rarely resolve ``<bucket>.<host>``."""
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
    config = Config(
        s3={"addressing_style": "path"} if endpoint else {},
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=endpoint or None, config=config)


@contextmanager
def explained(loc: S3Location, doing: str) -> Iterator[None]:
    """Turn botocore's errors into one sentence naming the URI (and never a secret)."""
    from botocore.exceptions import (  # type: ignore[import-untyped]
        BotoCoreError,
        ClientError,
        NoCredentialsError,
    )

    try:
        yield
    except NoCredentialsError as exc:
        raise StorageError(
            f"{doing} {loc.uri}: no S3 credentials in the pod; set spec.storageSecret to a"
            " Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from exc
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "error"))
        hint = {
            "AccessDenied": "access denied: check the credentials in spec.storageSecret",
            "InvalidAccessKeyId": "the access key is unknown: check spec.storageSecret",
            "SignatureDoesNotMatch": "the secret key is wrong: check spec.storageSecret",
            "NoSuchBucket": "no such bucket",
            "NoSuchKey": "no such object",
            "404": "no such object",
        }.get(code, code)
        raise StorageError(f"{doing} {loc.uri}: {hint}") from exc
    except BotoCoreError as exc:
        raise StorageError(f"{doing} {loc.uri}: {type(exc).__name__}: {exc}") from exc


def head(s3: Any, loc: S3Location) -> int | None:
    """The size of the object at exactly ``loc.key``, or None when there is none."""
    from botocore.exceptions import ClientError

    if not loc.key:
        return None
    with explained(loc, "reading"):
        try:
            return int(s3.head_object(Bucket=loc.bucket, Key=loc.key)["ContentLength"])
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey"):
                return None
            raise


def list_prefix(s3: Any, loc: S3Location) -> list[tuple[str, int]]:
    """(key, size) of every object under ``loc`` as a folder, in key order."""
    out: list[tuple[str, int]] = []
    with explained(loc, "listing"):
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=loc.prefix)
        for page in pages:
            out.extend((o["Key"], int(o["Size"])) for o in page.get("Contents", []))
    return out


def stream(s3: Any, loc: S3Location) -> Iterator[bytes]:
    """The object's bytes in 1 MiB chunks: hashing needs no copy on disk."""
    with explained(loc, "reading"):
        body = s3.get_object(Bucket=loc.bucket, Key=loc.key)["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()


def read_bytes(s3: Any, loc: S3Location) -> bytes:
    return b"".join(stream(s3, loc))


def upload_file(s3: Any, path: Path, loc: S3Location) -> None:
    """Upload one file (multipart above boto3's threshold)."""
    with explained(loc, "writing"):
        s3.upload_file(str(path), loc.bucket, loc.key)


def put_bytes(s3: Any, loc: S3Location, data: bytes) -> None:
    with explained(loc, "writing"):
        s3.put_object(Bucket=loc.bucket, Key=loc.key, Body=data)


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> int:
    """Delete ``keys`` (1,000 per request, the API's limit); returns how many were deleted."""
    done = 0
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        with explained(S3Location(bucket, batch[0]), "deleting"):
            reply = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
        errors = reply.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(
                f"deleting s3://{bucket}/{first.get('Key')}: {first.get('Code')}"
                f" ({len(errors)} object(s) not deleted)"
            )
        done += len(batch)
    return done
