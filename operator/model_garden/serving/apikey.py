"""Where the serving API key comes from, and when a rotated key needs vLLM restarted.

The pod gets the key twice from its Secret: as an environment variable (fixed for the
container's life) and as a mounted file (the kubelet updates it, by symlink swap, when the
Secret changes). The file wins when readable, so a rotated key takes effect without a new pod;
the operator never reads Secrets. vLLM reads its key once at start, so a new key means a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("model_garden.serving")


def read_key_file(path: Path) -> str | None:
    """The key in ``path`` (surrounding whitespace dropped); None when unreadable or empty."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return key or None


def resolve_api_key(
    key_file: str | None, env_name: str, environ: Mapping[str, str] = os.environ
) -> str | None:
    """The key from ``key_file`` when it holds one, else from ``environ[env_name]``, else None."""
    if key_file:
        key = read_key_file(Path(key_file))
        if key is not None:
            return key
        log.warning("API key file %s is unreadable or empty; using $%s", key_file, env_name)
    return environ.get(env_name) or None


def rotated(running: str | None, current: str | None) -> bool:
    """Whether vLLM must restart: the file holds a key, and not the one vLLM runs with.

    An unreadable or empty file (a Secret being swapped, or deleted) is no reason to drop the
    running key: vLLM keeps it until a new one appears.
    """
    return current is not None and current != running


class KeyFileWatch:
    """Polls the key file; :meth:`poll` returns a new key once, when it changes."""

    def __init__(self, key_file: str | None, running: str | None) -> None:
        self.path = Path(key_file) if key_file else None
        self.running = running

    def poll(self) -> str | None:
        if self.path is None:
            return None
        current = read_key_file(self.path)
        if not rotated(self.running, current):
            return None
        self.running = current
        return current
