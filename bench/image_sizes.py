"""Image sizes and build times (a script, not a test).

1. Sizes of the built images as the engine stores them (uncompressed), their layers, and with
   ``--compressed`` the gzip'd size of ``<engine> save`` (what a registry would serve; comparable
   with the "compressed size" registries publish).
2. Build times of ``scripts/build-images --offline``: cold (``--no-cache``: no layer cache, inputs
   — Debian base, uv cache, torch wheel — already on the host), layer-cached (``--force``: the
   engine's layer cache is warm, as after a source edit that leaves the dependency layers alone)
   and warm (the input key matches: nothing to build).

Run: ``uv run python bench/image_sizes.py [--build] [--compressed] [IMAGE...]``
(default images: operator runtime-cpu; ``--build`` runs the three builds first, which takes
minutes for runtime-cpu).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build-images"


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def timed_build(name: str, *flags: str) -> float:
    start = time.monotonic()
    subprocess.run(
        [str(SCRIPT), "--offline", *flags, name], check=True, stdout=subprocess.DEVNULL, cwd=ROOT
    )
    return time.monotonic() - start


def inspect(engine: str, tag: str) -> dict[str, object]:
    out = subprocess.run(
        [engine, "image", "inspect", tag], check=True, capture_output=True, text=True
    ).stdout
    info = json.loads(out)[0]
    history = json.loads(
        subprocess.run(
            [engine, "history", "--format", "json", tag], check=True, capture_output=True, text=True
        ).stdout
    )
    layers = [
        {"bytes": int(step["size"]), "step": " ".join(str(step["CreatedBy"]).split())[:100]}
        for step in history
        if int(step.get("size", 0)) > 1_000_000
    ]
    return {"bytes": int(info["Size"]), "layers": layers}


def compressed_bytes(engine: str, tag: str) -> int:
    """gzip (level 6, as registries' layer blobs) of the saved image, streamed: no temp file."""
    proc = subprocess.Popen(
        [engine, "save", "--format", "docker-archive", tag], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    total = 0
    while chunk := proc.stdout.read(1 << 20):
        total += len(compressor.compress(chunk))
    total += len(compressor.flush())
    if proc.wait() != 0:
        raise RuntimeError(f"{engine} save {tag} failed")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", default=["operator", "runtime-cpu"])
    parser.add_argument("--build", action="store_true", help="time cold, layer-cached, warm builds")
    parser.add_argument("--compressed", action="store_true", help="also gzip each saved image")
    args = parser.parse_args()
    engine = os.environ.get("MODEL_GARDEN_IMAGE_ENGINE") or (
        "podman" if shutil.which("podman") else "docker"
    )
    results: dict[str, dict[str, object]] = {}
    for name in args.images:
        tag = f"ghcr.io/model-garden/{name}:{version()}"
        entry: dict[str, object] = {"tag": tag}
        if args.build:
            entry["cold_s"] = round(timed_build(name, "--no-cache"), 1)
            entry["layer_cached_s"] = round(timed_build(name, "--force"), 1)
            entry["warm_s"] = round(timed_build(name), 1)
        entry.update(inspect(engine, tag))
        if args.compressed:
            entry["compressed_bytes"] = compressed_bytes(engine, tag)
        results[name] = entry
        print(json.dumps({name: entry}), file=sys.stderr)
    print("| image | size (uncompressed) | gzip'd | cold build | layer-cached | warm |")
    print("|---|---|---|---|---|---|")
    for name, e in results.items():
        size = f"{int(str(e['bytes'])) / 1e6:,.0f} MB"
        gz = f"{int(str(e['compressed_bytes'])) / 1e6:,.0f} MB" if "compressed_bytes" in e else "–"
        times = [f"{e[k]} s" if k in e else "–" for k in ("cold_s", "layer_cached_s", "warm_s")]
        print(f"| {name} | {size} | {gz} | " + " | ".join(times) + " |")


if __name__ == "__main__":
    main()
