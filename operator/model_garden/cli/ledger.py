"""The carbon of what the CLI runs on a version (export, evaluation, offline batch), added to
the version's totals.

Users may write a version's metadata, not its status: the CLI adds each operation to the
``modelgarden.dev/operations-carbon`` annotation (read, add, write back at the read
resourceVersion, again on a conflict), and the reconciler folds it into
``status.carbonByOperation`` and the lifetime emissions.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from .errors import CliError, Exists
from .target import Backend, LocalBackend, must_get

KIND = "ModelVersion"
ATTEMPTS = 5


@contextlib.contextmanager
def _serialised(backend: Backend) -> Iterator[None]:
    """Local mode's store lock (the store does not compare resourceVersions); a no-op in a
    cluster, where the API server refuses a stale write with a conflict."""
    if isinstance(backend, LocalBackend):
        with backend.store.lock():
            yield
    else:
        yield


def added(annotation: str | None, kind: str, carbon: dict[str, Any]) -> str:
    """The annotation's JSON with one more ``kind`` operation of ``carbon`` (a CarbonReport's
    wire form: energyKwh, emissionsKg, method) counted; an unreadable annotation starts anew."""
    from model_garden.api.modelversion import OperationCarbon

    try:
        ledger = json.loads(annotation or "{}")
        if not isinstance(ledger, dict):
            ledger = {}
    except ValueError:
        ledger = {}
    try:
        so_far = OperationCarbon.model_validate(ledger.get(kind) or {})
    except ValueError:
        so_far = OperationCarbon()
    one = OperationCarbon(
        energy_kwh=float(carbon.get("energyKwh") or 0.0),
        emissions_kg=float(carbon.get("emissionsKg") or 0.0),
        count=1,
        method=carbon.get("method") or "estimated",
    )
    ledger[kind] = so_far.plus(one).to_wire()
    return json.dumps(ledger, separators=(",", ":"), sort_keys=True)


def record(backend: Backend, version: str, kind: str, carbon: dict[str, Any]) -> None:
    """Add one operation's carbon to the version's annotation, then let local mode reconcile."""
    from model_garden.api.labels import ANNOTATION_OPERATIONS_CARBON

    for _ in range(ATTEMPTS):
        with _serialised(backend):
            mv = must_get(backend, KIND, version)
            meta = mv["metadata"]
            text = added(
                (meta.get("annotations") or {}).get(ANNOTATION_OPERATIONS_CARBON), kind, carbon
            )
            patch = {
                "metadata": {
                    "resourceVersion": meta.get("resourceVersion"),
                    "annotations": {ANNOTATION_OPERATIONS_CARBON: text},
                }
            }
            try:
                backend.patch(KIND, version, patch)
            except Exists:  # 409: written by someone else since the read
                continue
        backend.refresh()
        return
    raise CliError(f"ModelVersion {version}: could not record the {kind}'s carbon (conflicts)")
