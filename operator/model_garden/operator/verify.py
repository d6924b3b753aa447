"""Verify an imported artifact directory: ``python -m model_garden.operator.verify --path DIR``.

Run by a ModelVersion's verification Job. It checks that the directory holds a model
(config.json) or a LoRA adapter (adapter_config.json) with weights, and writes a JSON report
(size and sha256 digest) to the termination message, which the operator reads back.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

from model_garden.api.digest import artifact_digest

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")


def digest_directory(root: Path) -> tuple[int, str, int]:
    """(total bytes, ``sha256:<hex>``, file count): the same digest the trainer reports."""
    found = artifact_digest(root)
    return found.size_bytes, found.digest, found.files


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
    args = parser.parse_args(argv)
    root = Path(args.path)
    problem = check(root, args.format)
    if problem:
        report: dict[str, object] = {"error": problem}
    else:
        size, digest, count = digest_directory(root)
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
