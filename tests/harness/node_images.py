"""Images for the test node: a locally built pause image, and podman images imported into containerd.

No registry is reachable here, so the sandbox (pause) image is a tiny static Go program built on
this machine, and every image a pod runs comes from podman storage (scripts/build-images) via
``podman save --format oci-archive`` → ``ctr images import``. Both are cached by their inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

PAUSE_IMAGE = "localhost/model-garden/pause:3.2-mg"
PAUSE_SOURCE = """package main

import (
	"os"
	"os/signal"
	"syscall"
)

// The pod sandbox's init: hold the namespaces until told to stop.
func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
"""


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc  # type: ignore[no-any-return]


def pause_archive(cache: Path) -> Path:
    """An OCI archive of the pause image, built once per source text."""
    key = hashlib.sha256(PAUSE_SOURCE.encode()).hexdigest()[:16]
    archive = cache / f"pause-{key}.oci.tar"
    if archive.exists():
        return archive
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mg-pause-") as tmp:
        work = Path(tmp)
        (work / "pause.go").write_text(PAUSE_SOURCE)
        env = {
            **os.environ,
            "CGO_ENABLED": "0",
            "GO111MODULE": "off",
            "GOCACHE": str(work / "gocache"),
            "GOPATH": str(work / "gopath"),
        }
        _run(
            [
                "go",
                "build",
                "-ldflags=-s -w",
                "-o",
                str(work / "root" / "pause"),
                str(work / "pause.go"),
            ],
            env=env,
        )
        _run(["tar", "-C", str(work / "root"), "-cf", str(work / "rootfs.tar"), "pause"])
        _run(
            [
                "podman",
                "import",
                "--change",
                'ENTRYPOINT ["/pause"]',
                str(work / "rootfs.tar"),
                PAUSE_IMAGE,
            ]
        )
        _run(
            [
                "podman",
                "save",
                "--format",
                "oci-archive",
                "-o",
                str(work / "pause.tar"),
                PAUSE_IMAGE,
            ]
        )
        os.replace(work / "pause.tar", archive)
    return archive


def podman_image_id(name: str) -> str:
    return _run(["podman", "image", "inspect", "--format", "{{.Id}}", name]).stdout.strip()


def import_archive(ctr: list[str], archive: Path, name: str) -> None:
    """Import an OCI archive and make sure containerd knows it by ``name``."""
    _run([*ctr, "images", "import", "--base-name", name.rsplit(":", 1)[0], str(archive)])
    names = set(_run([*ctr, "images", "ls", "-q"]).stdout.split())
    if name not in names:
        candidates = [n for n in names if n.startswith(name.rsplit(":", 1)[0])]
        if not candidates:
            raise RuntimeError(f"importing {archive} gave no image named {name}: {sorted(names)}")
        _run([*ctr, "images", "tag", "--force", candidates[0], name])


def import_podman_images(
    ctr: list[str], names: list[str], record: Path, scratch: Path
) -> dict[str, float]:
    """Import each podman image unless containerd already has that exact image ID (``record``)."""
    import time

    done: dict[str, str] = json.loads(record.read_text()) if record.exists() else {}
    have = set(_run([*ctr, "images", "ls", "-q"]).stdout.split())
    timings = {}
    for name in names:
        image_id = podman_image_id(name)
        if done.get(name) == image_id and name in have:
            continue
        start = time.monotonic()
        archive = scratch / "image.oci.tar"
        archive.unlink(missing_ok=True)
        _run(["podman", "save", "--format", "oci-archive", "-o", str(archive), name])
        import_archive(ctr, archive, name)
        archive.unlink()
        done[name] = image_id
        record.write_text(json.dumps(done, indent=1))
        timings[name] = round(time.monotonic() - start, 1)
    return timings
