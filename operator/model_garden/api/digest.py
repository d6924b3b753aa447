"""The one digest of an artifact, shared by the trainer (which reports it) and the operator (which checks it).

The digest of a folder is the sha256 of its manifest: one ``<sha256>  <path>`` line per file
(``sha256sum`` format), sorted by relative path, so ``cd DIR && find . -type f | sort | xargs
sha256sum | sha256sum`` reproduces it; a changed, added or removed file changes it. A single
file (a gguf) is its own one-line manifest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ArtifactDigest:
    digest: str
    """``sha256:<hex>`` of the manifest."""
    size_bytes: int
    files: int


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[tuple[Path, str]]:
    if root.is_file():
        return [(root, root.name)]
    return [(p, p.relative_to(root).as_posix()) for p in sorted(root.rglob("*")) if p.is_file()]


def _manifest(files: list[tuple[Path, str]]) -> str:
    return "".join(f"{file_sha256(path)}  {rel}\n" for path, rel in files)


def manifest(root: Path) -> str:
    """``sha256sum``-style lines for every file under ``root``, sorted by relative path."""
    return _manifest(_files(root))


def artifact_digest(root: Path) -> ArtifactDigest:
    files = _files(root)
    return ArtifactDigest(
        digest="sha256:" + hashlib.sha256(_manifest(files).encode()).hexdigest(),
        size_bytes=sum(path.stat().st_size for path, _ in files),
        files=len(files),
    )
