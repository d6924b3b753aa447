"""The local source: the local store (``LocalStore``) read through a stat-checked cache.

Reads never parse a YAML file twice: each refresh stats the object files and re-reads only the
ones whose mtime or size changed. The refresh runs every second on a thread (and after each
write made through the API), finds what changed (by resourceVersion) and publishes it to SSE
subscribers; reads use the cache as it is when it is under ``max_staleness`` seconds old, so a
change made by another command shows within a second, as its SSE event does. Writes go through the code the CLI's local mode uses
(``LocalBackend``); with ``reconcile=True`` (``model-garden dashboard``) that thread also runs the
local controller, as the CLI does before each read, so created jobs train and deployments serve.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Literal

import yaml

from model_garden.api.labels import LABEL_IDEP_UID, LABEL_MV
from model_garden.local.store import NAMESPACE, PLURALS, AlreadyExists, LocalStore

from . import history
from .source import KINDS, ApiError, Broadcaster, Caller, Change

log = logging.getLogger("model_garden.readapi.local")
Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LocalSource:
    """One local store, one namespace (``default``)."""

    mode: Literal["local", "cluster"] = "local"

    def __init__(
        self,
        home: Path,
        *,
        token: str | None = None,
        reconcile: bool = False,
        poll_seconds: float = 1.0,
        max_staleness: float = 1.0,
    ) -> None:
        from model_garden.cli.target import LocalBackend

        self.home = home
        self.store = LocalStore(home)
        self.backend = LocalBackend(home, {})
        self.token = token
        self.reconcile = reconcile
        self.poll_seconds = poll_seconds
        self.max_staleness = max_staleness
        self.changes = Broadcaster()
        self._lock = threading.Lock()
        self._files: dict[str, dict[str, tuple[int, int, dict[str, Any]]]] = {k: {} for k in KINDS}
        self._refreshed = 0.0
        self.generation = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh(publish=False)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="readapi-local", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                if self.reconcile:
                    self.backend.refresh()
                self.refresh()
            except Exception:  # one failed pass must not end the updates; the next retries
                log.exception("local refresh failed")

    # --- the cache --------------------------------------------------------------------------

    def refresh(self, publish: bool = True) -> None:
        """Re-read the object files that changed; publish what changed."""
        with self._lock:
            found: list[Change] = []
            for kind in KINDS:
                folder = self.home / "objects" / PLURALS[kind]
                old = self._files[kind]
                new: dict[str, tuple[int, int, dict[str, Any]]] = {}
                with contextlib.suppress(FileNotFoundError):
                    for entry in os.scandir(folder):
                        if not entry.name.endswith(".yaml") or entry.name.startswith("."):
                            continue
                        try:
                            st = entry.stat()
                            cached = old.get(entry.name)
                            if cached and cached[:2] == (st.st_mtime_ns, st.st_size):
                                new[entry.name] = cached
                                continue
                            with open(entry.path, encoding="utf-8") as fh:
                                body = yaml.load(fh, Loader=Loader)  # noqa: S506 (a safe loader)
                        except FileNotFoundError:
                            continue
                        if not isinstance(body, dict):
                            continue
                        new[entry.name] = (st.st_mtime_ns, st.st_size, body)
                        before = cached[2] if cached else None
                        rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
                        if before is None:
                            found.append(self._change(kind, body, "ADDED", rv))
                        elif (before.get("metadata") or {}).get("resourceVersion") != rv:
                            found.append(self._change(kind, body, "MODIFIED", rv))
                for gone in set(old) - set(new):
                    body = old[gone][2]
                    rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
                    found.append(self._change(kind, body, "DELETED", rv))
                self._files[kind] = new
            self._refreshed = time.monotonic()
            self.generation += len(found)
        if publish:
            for change in found:
                self.changes.publish(change)

    @staticmethod
    def _change(kind: str, body: dict[str, Any], type_: Any, rv: str) -> Change:
        name = str((body.get("metadata") or {}).get("name") or "")
        return Change(kind, NAMESPACE, name, type_, rv)

    def _fresh(self) -> None:
        if time.monotonic() - self._refreshed > self.max_staleness:
            self.refresh()

    # --- reads --------------------------------------------------------------------------------

    def namespaces(self, caller: Caller) -> list[str]:
        return [NAMESPACE]

    def items(
        self, kind: str, caller: Caller, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        if namespace not in (None, NAMESPACE):
            return []
        self._fresh()
        with self._lock:
            bodies = [entry[2] for entry in self._files[kind].values()]
        for body in bodies:  # objects written by older versions may lack it
            body.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        return bodies

    def get(self, kind: str, namespace: str, name: str, caller: Caller) -> dict[str, Any] | None:
        if namespace != NAMESPACE:
            return None
        self._fresh()
        with self._lock:
            entry = self._files[kind].get(f"{name}.yaml")
        return entry[2] if entry else None

    def events(self, kind: str, namespace: str, name: str, caller: Caller) -> list[dict[str, Any]]:
        if namespace != NAMESPACE:
            return []
        return self.store.events(kind, name)

    # --- writes (the CLI's local backend) -----------------------------------------------------

    def authorize_write(self, caller: Caller) -> None:
        if self.token is None:
            raise ApiError(403, "this read API was started without a write token: writes are off")
        if caller.token is None or not hmac.compare_digest(caller.token, self.token):
            raise ApiError(401, "writes need the token printed at start (Authorization: Bearer)")

    def authorize_upload(self, namespace: str, caller: Caller) -> None:
        self._namespace(namespace)

    def _namespace(self, namespace: str) -> None:
        if namespace != NAMESPACE:
            raise ApiError(404, f"local mode has one namespace, {NAMESPACE}")

    def _after_write(self) -> None:
        if self.reconcile:
            self.backend.refresh()
        self.refresh()

    def create(self, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
        self.authorize_write(caller)
        self._namespace(str((body.get("metadata") or {}).get("namespace") or NAMESPACE))
        replicas = (body.get("spec") or {}).get("replicas", 1)
        if body.get("kind") == "InferenceDeployment" and replicas > 1:
            raise ApiError(
                422, "local mode serves one replica per deployment (its pods share ports)"
            )
        try:
            created = self.store.create(body)
        except AlreadyExists as exc:
            raise ApiError(409, str(exc)) from exc
        self._after_write()
        return self.get(created["kind"], NAMESPACE, created["metadata"]["name"], caller) or created

    def patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], caller: Caller
    ) -> dict[str, Any]:
        self.authorize_write(caller)
        self._namespace(namespace)
        updated = self.store.patch(kind, name, patch)
        if updated is None:
            raise ApiError(404, f"{kind} {namespace}/{name} not found")
        self._after_write()
        return self.get(kind, namespace, name, caller) or updated

    def scale(self, namespace: str, name: str, replicas: int, caller: Caller) -> dict[str, Any]:
        if replicas > 1:  # the CLI's rule: local pods of one deployment would share ports
            self.authorize_write(caller)
            raise ApiError(
                422, "local mode serves one replica per deployment (its pods share ports)"
            )
        return self.patch(
            "InferenceDeployment", namespace, name, {"spec": {"replicas": replicas}}, caller
        )

    def delete(self, kind: str, namespace: str, name: str, caller: Caller) -> None:
        self.authorize_write(caller)
        self._namespace(namespace)
        if self.store.get(kind, name) is None:
            raise ApiError(404, f"{kind} {namespace}/{name} not found")
        if self.reconcile:
            self.backend.delete(kind, name)  # stops its processes, as `mg deployments delete`
        else:
            from model_garden.api.common import utcnow
            from model_garden.operator.status import timestamp

            with self.store.lock():
                obj = self.store.get(kind, name) or {}
                if (obj.get("metadata") or {}).get("finalizers"):
                    stamp = {"metadata": {"deletionTimestamp": timestamp(utcnow())}}
                    self.store.patch(kind, name, stamp)
                else:
                    self.store.delete(kind, name)
        self.refresh()

    # --- files --------------------------------------------------------------------------------

    def job_history_file(self, ftj: dict[str, Any], caller: Caller) -> Path | None:
        from model_garden.operator.finetunejob.objects import job_name

        job = self.store.get("Job", job_name(str(ftj["metadata"]["name"])))
        version = ((job or {}).get("metadata") or {}).get("labels", {}).get(LABEL_MV)
        uri = history.job_output_uri(ftj, version)
        return self.store.local_path(uri) / history.JOB_HISTORY if uri else None

    def meter_history_files(self, idep: dict[str, Any], caller: Caller) -> list[Path]:
        uid = idep["metadata"].get("uid")
        name = idep["metadata"]["name"]
        found: list[Path] = []
        for pod in self.store.list_raw("Pod"):
            if (pod["metadata"].get("labels") or {}).get(LABEL_IDEP_UID) != uid:
                continue
            scratch = self.store.scratch_dir(pod["metadata"]["name"])
            found += scratch.glob(f"*/model-garden/{history.meter_history_name(NAMESPACE, name)}")
        return sorted(found, key=lambda p: p.stat().st_mtime if p.exists() else 0.0)

    def datasets_dir(self, namespace: str) -> Path | None:
        """``<artifacts claim>/<namespace>/datasets``: where a job's ``pvc://`` dataset URI
        ``pvc://model-garden-artifacts/<namespace>/datasets/<file>`` points."""
        return self.store.claim_dir(history.ARTIFACTS_CLAIM) / namespace / "datasets"
