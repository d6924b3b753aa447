"""Artifact URIs and the volumes that make them paths inside a pod.

Every claim named by a ``pvc://<claim>/<path>`` URI is mounted at ``/mnt/model-garden/<claim>``,
so the same URI always becomes the same path, in any pod. ``file://`` paths are used as they
are (baked into the image or local mode); ``s3://``, ``hf://`` and hub ids are passed through
unchanged: the pod fetches them into its cache volume itself (:mod:`model_garden.storage.staging`),
with the storage Secret as env (:mod:`model_garden.storage.credentials`), so no claim is mounted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from model_garden.api.common import split_uri

MOUNT_ROOT = "/mnt/model-garden"
PREPARE_CONTAINER = "prepare-folders"
# A few mkdir calls: small, and requests == limits so the pod stays in the Guaranteed QoS class.
PREPARE_RESOURCES = {"cpu": "50m", "memory": "32Mi"}


@dataclass(frozen=True)
class Location:
    """Where a URI lives in the pod; ``claim`` is set when a PVC must be mounted."""

    path: str
    claim: str | None = None


def resolve(uri: str) -> Location:
    """``pvc://claim/a/b`` -> /mnt/model-garden/claim/a/b (claim ``claim``); file:// -> its path."""
    try:
        scheme, rest = split_uri(uri)  # the one URI pattern, in model_garden.api
    except ValueError:
        return Location(uri)  # a hub id or a plain path
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
    """The pod volume for a claim: a DNS-1123 label, distinct for distinct claims.

    Claim names are subdomains (dots, up to 253 characters) while volume names are labels: a
    name that had to change (dots, length) gets a hash of the claim so two claims never share it.
    """
    plain = f"claim-{claim}"
    if "." not in claim and len(plain) <= 63:
        return plain
    digest = hashlib.sha256(claim.encode()).hexdigest()[:10]
    stem = plain.replace(".", "-")[: 63 - len(digest) - 1].rstrip("-")
    return f"{stem}-{digest}"


class UnsafePath(ValueError):
    """A claim path that would leave its claim (``..``); kubelet refuses it as a subPath too."""


def claim_sub_path(location: Location) -> str:
    """The path inside the claim (``""`` for the whole claim), normalised, never escaping it."""
    assert location.claim is not None
    root = f"{MOUNT_ROOT}/{location.claim}"
    rest = location.path.removeprefix(root).strip("/")
    parts = [p for p in rest.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(f"pvc://{location.claim}/{rest}: '..' may not appear in a claim path")
    return "/".join(parts)


def _covers(outer: str, inner: str) -> bool:
    """True when ``inner`` is ``outer`` or lies below it ("" is the whole claim)."""
    return outer == "" or inner == outer or inner.startswith(outer + "/")


@dataclass
class Mounts:
    """The claim paths a pod needs, each mounted by itself (``subPath``), read-only unless written.

    Why not the whole claim: a trainer that mounted the artifacts claim read-write could change
    every published version and every other job's checkpoints. Each path is mounted at the
    same place as before (``/mnt/model-garden/<claim>/<path>``), so configs do not change; a
    path is left out when a mount above it already gives at least the same access. One volume
    per claim, read-only when no path of it is written.
    """

    paths: dict[tuple[str, str], bool] = field(default_factory=dict)  # (claim, sub) -> writable

    def add(self, location: Location, writable: bool = False) -> str:
        """Mount ``location`` (if on a claim) and return its path in the pod.

        Raises UnsafePath for a path with ``..``.
        """
        if location.claim:
            key = (location.claim, claim_sub_path(location))
            self.paths[key] = self.paths.get(key, False) or writable
        return location.path

    def add_claim(self, claim: str) -> None:
        """Mount a whole claim read-only (e.g. adapters loaded at run time from anywhere on it)."""
        key = (claim, "")
        self.paths[key] = self.paths.get(key, False)

    @property
    def claims(self) -> dict[str, bool]:
        """claim -> whether any of its paths is writable (one volume per claim)."""
        out: dict[str, bool] = {}
        for (claim, _sub), writable in self.paths.items():
            out[claim] = out.get(claim, False) or writable
        return out

    def _needed(self) -> list[tuple[str, str, bool]]:
        """Paths not already covered by another mount with at least the same access."""
        out = []
        for (claim, sub), writable in sorted(self.paths.items()):
            covered = any(
                other_claim == claim
                and other_sub != sub
                and _covers(other_sub, sub)
                and (other_writable or not writable)
                for (other_claim, other_sub), other_writable in self.paths.items()
            )
            if not covered:
                out.append((claim, sub, writable))
        return out

    def writable_folders(self) -> list[tuple[str, str]]:
        """(claim, path in the pod) of each writable sub-path mount, shallow first."""
        return [
            (claim, f"{MOUNT_ROOT}/{claim}/{sub}")
            for claim, sub, writable in sorted(self._needed(), key=lambda n: (n[1].count("/"), n))
            if writable and sub
        ]

    def prepare_container(
        self, image: str, security_context: dict[str, Any]
    ) -> dict[str, Any] | None:
        """An init container that creates the writable folders as the pod's own user.

        Why: kubelet creates a missing ``subPath`` itself, as root with mode 0750, and neither
        fsGroup (applied when the volume is set up, before) nor a hostPath volume (none at all)
        makes it writable for uid 1000 — the trainer would fail with Permission denied on its
        first write (seen on a real node). This container mounts each such claim whole, runs
        only ``mkdir -p`` on the paths the main container mounts, and exits; init containers run
        before kubelet prepares the main container's sub-paths, so it finds them there.
        """
        folders = self.writable_folders()
        if not folders:
            return None
        return {
            "name": PREPARE_CONTAINER,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["mkdir", "-p", "--", *(path for _claim, path in folders)],
            "resources": {"requests": dict(PREPARE_RESOURCES), "limits": dict(PREPARE_RESOURCES)},
            "securityContext": security_context,
            "volumeMounts": [
                {"name": claim_volume_name(claim), "mountPath": f"{MOUNT_ROOT}/{claim}"}
                for claim in sorted({claim for claim, _path in folders})
            ],
        }

    def volumes(self) -> list[dict[str, Any]]:
        return [
            {
                "name": claim_volume_name(claim),
                "persistentVolumeClaim": {"claimName": claim, "readOnly": not writable},
            }
            for claim, writable in sorted(self.claims.items())
        ]

    def volume_mounts(self) -> list[dict[str, Any]]:
        """Shallow paths first, so a writable folder mounted inside a read-only one lands on top."""
        mounts = []
        for claim, sub, writable in sorted(self._needed(), key=lambda n: (n[1].count("/"), n)):
            mount: dict[str, Any] = {
                "name": claim_volume_name(claim),
                "mountPath": f"{MOUNT_ROOT}/{claim}" + (f"/{sub}" if sub else ""),
                "readOnly": not writable,
            }
            if sub:
                mount["subPath"] = sub
            mounts.append(mount)
        return mounts
