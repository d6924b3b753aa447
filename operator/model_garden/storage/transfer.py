"""Artifacts on S3: publish a folder atomically, and digest or fetch exactly what was published.

S3 has no rename, so "upload to a temp name, then rename" would copy every byte twice. Instead a
folder is published as: delete any old completion marker, upload the files, then write the
marker last. The marker, ``.model-garden-manifest``, *is* the artifact's manifest (the
``sha256sum`` lines of :mod:`model_garden.api.digest`), so the digest of a published folder is
the sha256 of its marker, and readers take exactly the files it lists. A folder whose upload
stopped half-way has no marker: readers that require one (a FineTuneJob's outputs) refuse it,
and extra objects left by an earlier attempt are never part of an artifact.

A folder someone uploaded with other tools (``aws s3 cp``) has no marker; it is read whole
unless the caller requires one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_garden.api.digest import ArtifactDigest, file_sha256

from . import s3 as s3io
from .s3 import StorageError
from .uris import S3Location, parse_s3

log = logging.getLogger("model_garden.storage")
MARKER = ".model-garden-manifest"
WORKERS = 4


class IncompleteUpload(StorageError):
    """The folder has no completion marker: its upload never finished."""


@dataclass(frozen=True)
class RemoteFile:
    key: str
    rel: str
    size: int
    sha256: str | None = None
    """What the marker says the file hashes to (None without a marker)."""


def _order(rel: str) -> tuple[str, ...]:
    """The order of :func:`model_garden.api.digest.manifest`: sorted paths compare part by part
    (so ``a/x`` comes before ``a-b/x``, unlike a plain string sort)."""
    return tuple(rel.split("/"))


def manifest_text(entries: Iterable[tuple[str, str]]) -> str:
    """``<sha256>  <rel>`` lines, sorted like the local manifest: the same bytes for the same files."""
    return "".join(f"{sha}  {rel}\n" for rel, sha in sorted(entries, key=lambda e: _order(e[0])))


def parse_manifest(text: str, where: str) -> dict[str, str]:
    """rel -> sha256 from a marker; a malformed line is an error naming its number."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        sha, sep, rel = line.partition("  ")
        if not sep or len(sha) != 64 or not rel or rel.startswith("/") or ".." in rel.split("/"):
            raise StorageError(f"{where} line {number} is not '<sha256>  <path>': {line[:80]!r}")
        out[rel] = sha
    return out


def digest_of(manifest: str, sizes: Iterable[int]) -> ArtifactDigest:
    listed = list(sizes)
    return ArtifactDigest(
        digest="sha256:" + hashlib.sha256(manifest.encode()).hexdigest(),
        size_bytes=sum(listed),
        files=len(listed),
    )


def remote_files(s3: Any, uri: str, require_marker: bool = False) -> list[RemoteFile]:
    """The files of the artifact at ``uri``: one object (a file), or the folder's objects —
    exactly those its marker lists when it has one."""
    loc = parse_s3(uri)
    size = s3io.head(s3, loc)
    if size is not None:  # a single object (a gguf, a dataset file)
        return [RemoteFile(loc.key, loc.key.rsplit("/", 1)[-1], size)]
    objects = dict(s3io.list_prefix(s3, loc))
    marker_key = loc.child(MARKER).key
    if marker_key in objects:
        listed = parse_manifest(s3io.read_bytes(s3, loc.child(MARKER)).decode(), f"{uri}/{MARKER}")
        files = []
        for rel, sha in listed.items():
            key = loc.child(rel).key
            if key not in objects:
                raise StorageError(f"{uri}: {rel} is in {MARKER} but not in the bucket")
            files.append(RemoteFile(key, rel, objects[key], sha))
        return sorted(files, key=lambda f: _order(f.rel))
    if require_marker:
        raise IncompleteUpload(
            f"{uri}: no {MARKER}, so its upload never finished; it is not taken as an artifact"
        )
    if not objects:
        raise StorageError(f"{uri}: no object or folder there")
    files = [RemoteFile(k, k.removeprefix(loc.prefix), n) for k, n in objects.items()]
    return sorted(files, key=lambda f: _order(f.rel))


def _hash_stream(s3: Any, bucket: str, f: RemoteFile, sink: Any = None) -> str:
    h = hashlib.sha256()
    for chunk in s3io.stream(s3, S3Location(bucket, f.key)):
        h.update(chunk)
        if sink is not None:
            sink.write(chunk)
    found = h.hexdigest()
    if f.sha256 is not None and found != f.sha256:
        raise StorageError(
            f"s3://{bucket}/{f.key} hashes to {found}, not {f.sha256} as its {MARKER} says:"
            " it changed after it was published"
        )
    return found


def s3_digest(s3: Any, uri: str, require_marker: bool = False) -> ArtifactDigest:
    """The digest :func:`model_garden.api.digest.artifact_digest` gives the same files on disk,
    computed by streaming each object (nothing is written to disk)."""
    files = remote_files(s3, uri, require_marker)
    bucket = parse_s3(uri).bucket
    with ThreadPoolExecutor(WORKERS) as pool:
        shas = list(pool.map(lambda f: _hash_stream(s3, bucket, f), files))
    text = manifest_text((f.rel, sha) for f, sha in zip(files, shas, strict=True))
    return digest_of(text, (f.size for f in files))


def download(s3: Any, uri: str, dest: Path, require_marker: bool = False) -> Path:
    """Fetch the artifact at ``uri`` into ``dest`` and return the local path (``dest`` for a
    folder, ``dest/<name>`` for one object). Each file lands under a temporary name and is renamed
    once complete (and its hash checked against the marker), so a fetch cut short is redone; a
    file already there with the marker's hash is kept (a cache shared by pods)."""
    files = remote_files(s3, uri, require_marker)
    bucket = parse_s3(uri).bucket
    dest.mkdir(parents=True, exist_ok=True)

    def fetch(f: RemoteFile) -> bool:
        """Download one file; True when the cache already had it."""
        target = dest / f.rel
        if _already_there(target, f):
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as sink:
                _hash_stream(s3, bucket, f, sink)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return False

    with ThreadPoolExecutor(WORKERS) as pool:
        kept = sum(pool.map(fetch, files))
    log.info(
        "fetched %s: %d file(s) downloaded, %d kept from the cache", uri, len(files) - kept, kept
    )
    single = len(files) == 1 and files[0].key == parse_s3(uri).key
    return dest / files[0].rel if single else dest


def _already_there(target: Path, f: RemoteFile) -> bool:
    """A file an earlier fetch left in a shared cache (``spec.modelCache``), with the size and
    the sha256 the marker lists: hashing a local file is faster than downloading it. Without a
    marker nothing says what the file should be, so it is fetched again."""
    if f.sha256 is None or not target.is_file() or target.stat().st_size != f.size:
        return False
    return file_sha256(target) == f.sha256


def local_files(root: Path) -> list[tuple[Path, str]]:
    """(path, relative name) of every file under ``root`` (or ``root`` itself, a file)."""
    if root.is_file():
        return [(root, root.name)]
    return [(p, p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file()]


def publish(s3: Any, local: Path, uri: str) -> ArtifactDigest:
    """Upload the folder ``local`` to ``uri`` atomically (see the module doc) and return its
    digest, the one the local folder has."""
    loc = parse_s3(uri)
    files = local_files(local)
    s3io.delete_keys(s3, loc.bucket, [loc.child(MARKER).key])  # an old version is not complete
    shas: dict[str, str] = {}

    def put(item: tuple[Path, str]) -> None:
        path, rel = item
        s3io.upload_file(s3, path, loc.child(rel))

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(put, files))

    for path, rel in files:
        shas[rel] = file_sha256(path)
    text = manifest_text(shas.items())
    s3io.put_bytes(s3, loc.child(MARKER), text.encode())  # last: the upload is now complete
    return digest_of(text, (path.stat().st_size for path, _ in files))


def upload_files(s3: Any, local: Path, uri: str, skip: Iterable[Path] = ()) -> int:
    """Upload every file under ``local`` except those under ``skip`` (folders already published),
    without a marker: side files such as result.json; returns how many."""
    loc = parse_s3(uri)
    skipped = [s.resolve() for s in skip]
    count = 0
    for path, rel in local_files(local):
        if any(path.resolve().is_relative_to(s) for s in skipped):
            continue
        s3io.upload_file(s3, path, loc.child(rel))
        count += 1
    return count


def delete_prefix(s3: Any, uri: str) -> int:
    """Delete the artifact at ``uri``: its marker first (so no reader takes a half-deleted
    folder as complete), then every object under it; returns how many objects went."""
    loc = parse_s3(uri)
    if not loc.key:
        raise StorageError(f"{uri}: refusing to delete a whole bucket")
    if s3io.head(s3, loc) is not None:
        return s3io.delete_keys(s3, loc.bucket, [loc.key])
    keys = [k for k, _ in s3io.list_prefix(s3, loc)]
    marker = loc.child(MARKER).key
    ordered = ([marker] if marker in keys else []) + [k for k in keys if k != marker]
    return s3io.delete_keys(s3, loc.bucket, ordered) if ordered else 0
