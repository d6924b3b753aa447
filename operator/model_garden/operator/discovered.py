"""What the API server serves, discovered once in a while rather than on every reconcile.

Optional engines (KEDA, the Gateway API, Kubeflow Trainer, JobSet) may be installed after the
operator starts, so their presence is asked again once ``ttl`` seconds passed; a failed discovery
keeps the previous answer (at first it raises, and the reconcile is retried), so a transient API
error never makes an installed engine look gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

Call = Callable[..., Any]
T = TypeVar("T")


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
