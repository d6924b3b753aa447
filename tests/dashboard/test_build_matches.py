"""The committed app (operator/model_garden/readapi/static) is what dashboard/ builds to, byte for
byte: rebuild after editing dashboard/ (`scripts/build-dashboard`) and commit both.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .conftest import REPO, STATIC


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_rebuild_matches_the_committed_static_files(node_modules: Path, tmp_path: Path) -> None:
    out = tmp_path / "static"
    done = subprocess.run(
        [str(REPO / "scripts" / "build-dashboard"), str(out)],
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    built, committed = files(out), files(STATIC)
    assert "index.html" in built
    assert sorted(built) == sorted(committed), (
        "the committed static files differ from a rebuild: run scripts/build-dashboard"
    )
    changed = [name for name in built if built[name] != committed[name]]
    assert changed == [], f"rebuilt files differ: {changed}: run scripts/build-dashboard"
