"""What the API server serves, discovered once in a while rather than on every reconcile, and
the objects of kinds that may not be served, read by name.

Optional engines (KEDA, the Gateway API, Kubeflow Trainer, JobSet) may be installed after the
operator starts, so their presence is asked again once ``ttl`` seconds passed; a failed discovery
keeps the previous answer (at first it raises, and the reconcile is retried), so a transient API
error never makes an installed engine look gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

Call = Callable[..., Any]
"""``Executor.call``: (method, path) -> decoded JSON, raising ApiException on non-2xx."""
T = TypeVar("T")
Resources = Mapping[tuple[str, str], set[str]]
"""(group, version) -> the resource names it serves (subresources left out)."""


def group_versions(groups: Mapping[str, Any], group: str) -> list[str]:
    """The versions of ``group`` in ``/apis`` (an APIGroupList); none when it is not served."""
    for entry in groups.get("groups") or []:
        if entry.get("name") == group:
            return [str(v.get("version")) for v in entry.get("versions") or []]
    return []


def serves(
    groups: Mapping[str, Any], resources: Resources, group: str, version: str, resource: str
) -> bool:
    """A group alone is not enough: its version must be listed and serve the resource."""
    return version in group_versions(groups, group) and resource in resources.get(
        (group, version), set()
    )


def resource_lists(call: Call, group_version_pairs: Iterable[tuple[str, str]]) -> Resources:
    """The resource names of each group-version (one GET each: non-resource discovery URLs,
    no RBAC rule needed). One listed but not answering (a broken aggregated API) is left out,
    as if absent, and asked again at the next discovery."""
    out: dict[tuple[str, str], set[str]] = {}
    for group, version in group_version_pairs:
        try:
            listing = call("GET", f"/apis/{group}/{version}")
        except ApiException as exc:
            log.info("discovery of %s/%s failed: %s", group, version, exc.status)
            continue
        out[(group, version)] = {
            str(r.get("name")) for r in listing.get("resources") or [] if "/" not in r["name"]
        }
    return out


def get_or_none(call: Call, path: str) -> dict[str, Any] | None:
    """The object at ``path``, None when it is not there (404)."""
    try:
        return dict(call("GET", path))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


class Discovered(Generic[T]):
    """``discover(call)``'s answer, kept ``ttl`` seconds (0: asked every time)."""

    def __init__(
        self, discover: Callable[[Call], T], what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._discover = discover
        self._what = what
        self._clock = clock
        self._value: T | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def current(self, call: Call, ttl: float) -> T:
        with self._lock:
            now = self._clock()
            if self._value is None or now - self._at >= ttl:
                try:
                    self._value = self._discover(call)
                except (ApiException, OSError) as exc:
                    if self._value is None:
                        raise
                    log.warning("%s failed (%s); keeping the last answer", self._what, exc)
                self._at = now
            return self._value
