"""Verify an imported artifact directory: ``python -m model_garden.operator.verify --path DIR``.

Run by a ModelVersion's verification Job. It checks that the directory holds a model
(config.json) or a LoRA adapter (adapter_config.json) with weights, and writes a JSON report
(size and sha256 digest) to the termination message, which the operator reads back.

``--path`` may also be ``s3://…`` (the objects are hashed as they stream: nothing is written to
disk; ``--require-manifest`` refuses a folder whose upload never finished) or
``hf://<org>/<name>@<revision>`` (the snapshot is downloaded into the cache, then hashed).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from model_garden.api.digest import artifact_digest
from model_garden.storage import hf, transfer
from model_garden.storage import s3 as s3io
from model_garden.storage.uris import is_hf, is_s3

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def digest_directory(root: Path) -> tuple[int, str, int]:
    """(total bytes, ``sha256:<hex>``, file count): the same digest the trainer reports."""
    found = artifact_digest(root)
    return found.size_bytes, found.digest, found.files


def check_names(names: list[str], fmt: str, where: str) -> str | None:
    """:func:`check` on the relative names of an artifact's files (top level: no "/")."""
    top = [n for n in names if "/" not in n]
    if fmt == "gguf":
        return None if any(n.endswith(".gguf") for n in top) else f"no .gguf file in {where}"
    marker = "adapter_config.json" if fmt == "adapter" else "config.json"
    if marker not in top:
        return f"{marker} missing in {where}"
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in top):
        return f"no weights ({', '.join(WEIGHT_SUFFIXES)}) in {where}"
    return None


def verify_s3(
    uri: str, fmt: str, require_manifest: bool
) -> tuple[str | None, tuple[int, str, int]]:
    """(problem, (bytes, digest, files)) of an s3:// artifact, hashed while streaming."""
    client = s3io.client()
    files = transfer.remote_files(client, uri, require_manifest)
    problem = check_names([f.rel for f in files], fmt, uri)
    if problem:
        return problem, (0, "", 0)
    found = transfer.s3_digest(client, uri, require_manifest)
    return None, (found.size_bytes, found.digest, found.files)


def check(root: Path, fmt: str) -> str | None:
    """A sentence naming what is missing, or None when the artifact looks complete."""
    if not root.exists():
        return f"{root} does not exist"
    if fmt == "gguf":
        ok = root.is_file() or any(root.glob("*.gguf"))
        return None if ok else f"no .gguf file in {root}"
    marker = "adapter_config.json" if fmt == "adapter" else "config.json"
    if not (root / marker).is_file():
        return f"{marker} missing in {root}"
    if not any(p.suffix in WEIGHT_SUFFIXES for p in root.iterdir()):
        return f"no weights ({', '.join(WEIGHT_SUFFIXES)}) in {root}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", required=True)
    parser.add_argument("--format", default="merged", choices=["merged", "adapter", "gguf"])
    parser.add_argument("--termination-log", default="/dev/termination-log")
    parser.add_argument(
        "--require-manifest",
        action="store_true",
        help="s3:// only: refuse a folder without its completion marker (a FineTuneJob's output)",
    )
    args = parser.parse_args(argv)
    try:
        if is_s3(args.path):
            problem, (size, digest, count) = verify_s3(
                args.path, args.format, args.require_manifest
            )
        else:
            root = hf.fetch(args.path) if is_hf(args.path) else Path(args.path)
            problem = check(root, args.format)
            if not problem:
                size, digest, count = digest_directory(root)
    except (s3io.StorageError, ValueError) as exc:
        problem = str(exc)
    if problem:
        report: dict[str, object] = {"error": problem}
    else:
        # what hashing cost, for the version's carbon (the operator turns it into energy)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = round(usage.ru_utime + usage.ru_stime, 3)
        report = {"sizeBytes": size, "digest": digest, "files": count, "cpuSeconds": cpu}
    text = json.dumps(report)
    print(text)
    try:
        Path(args.termination_log).write_text(text, encoding="utf-8")
    except OSError:
        pass
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
