"""``hf://<org>/<name>@<revision>``: fetch a Hub snapshot into the pod's cache.

The snapshot lands in the standard Hub cache (``$HF_HOME/hub``, the pod's cache volume), and
the path returned is its snapshot folder: no ``.cache`` metadata folder inside it, so its digest
is the digest of the repository's files at that revision. ``HF_ENDPOINT`` (a mirror, or a test's
stand-in) and ``HF_TOKEN`` (gated models) are read when called, not at import.
"""

from __future__ import annotations

import os
from pathlib import Path

from .s3 import StorageError
from .uris import HubRef, parse_hf


def fetch(uri: str, cache_dir: Path | None = None) -> Path:
    """Download the snapshot ``uri`` names (once: the cache is reused) and return its folder."""
    ref: HubRef = parse_hf(uri)
    try:
        from huggingface_hub import snapshot_download  # type: ignore[import-not-found]
        from huggingface_hub.errors import (  # type: ignore[import-not-found]
            HfHubHTTPError,
            RepositoryNotFoundError,
        )
    except ImportError as exc:  # the control-plane env has no huggingface_hub
        raise StorageError(f"{uri}: huggingface_hub is not installed in this image") from exc
    endpoint = os.environ.get("HF_ENDPOINT") or None
    try:
        path = snapshot_download(
            ref.repo,
            revision=ref.revision,
            cache_dir=str(cache_dir) if cache_dir else None,
            endpoint=endpoint,
            token=os.environ.get("HF_TOKEN") or None,
        )
    except RepositoryNotFoundError as exc:
        raise StorageError(
            f"{uri}: no such repository or revision on {endpoint or 'the Hub'} (or it is gated"
            " and the token does not grant access)"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise StorageError(f"{uri}: download failed: {type(exc).__name__}: {exc}") from exc
    return Path(path)
