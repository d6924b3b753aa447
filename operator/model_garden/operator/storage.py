"""Artifact URIs and the volumes that make them paths inside a pod.

Every claim named by a ``pvc://<claim>/<path>`` URI is mounted at ``/mnt/model-garden/<claim>``,
so the same URI always becomes the same path, in any pod. ``file://`` paths are used as they
are (baked into the image or local mode); ``s3://`` and hub ids are passed through unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MOUNT_ROOT = "/mnt/model-garden"


@dataclass(frozen=True)
class Location:
    """Where a URI lives in the pod; ``claim`` is set when a PVC must be mounted."""

    path: str
    claim: str | None = None


def resolve(uri: str) -> Location:
    """``pvc://claim/a/b`` -> /mnt/model-garden/claim/a/b (claim ``claim``); file:// -> its path."""
    match = re.match(r"^([a-z0-9]+)://(.*)$", uri)
    if not match:
        return Location(uri)  # a hub id or a plain path
    scheme, rest = match.groups()
    if scheme == "pvc":
        claim, _, sub = rest.partition("/")
        path = f"{MOUNT_ROOT}/{claim}" + (f"/{sub.strip('/')}" if sub.strip("/") else "")
        return Location(path, claim)
    if scheme == "file":
        return Location(rest if rest.startswith("/") else f"/{rest}")
    return Location(uri)


def join_uri(base: str, *parts: str) -> str:
    """Join path segments onto a storage URI: ``pvc://c`` + ``ns/m`` -> ``pvc://c/ns/m``."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


def claim_volume_name(claim: str) -> str:
    return f"claim-{claim}"[:63].rstrip("-.")


@dataclass
class Mounts:
    """The claims a pod needs, each mounted once; read-only unless some use writes to it."""

    claims: dict[str, bool] = field(default_factory=dict)  # claim -> writable

    def add(self, location: Location, writable: bool = False) -> str:
        if location.claim:
            self.claims[location.claim] = self.claims.get(location.claim, False) or writable
        return location.path

    def volumes(self) -> list[dict[str, Any]]:
        return [
            {
                "name": claim_volume_name(claim),
                "persistentVolumeClaim": {"claimName": claim, "readOnly": not writable},
            }
            for claim, writable in sorted(self.claims.items())
        ]

    def volume_mounts(self) -> list[dict[str, Any]]:
        return [
            {
                "name": claim_volume_name(claim),
                "mountPath": f"{MOUNT_ROOT}/{claim}",
                "readOnly": not writable,
            }
            for claim, writable in sorted(self.claims.items())
        ]
