"""Local mode's object store: the resources a cluster would hold, as YAML files in one folder.

It plays the API server's part for one namespace (``default``): it gives new objects a uid, a
creation time, a generation (bumped when the spec changes) and a resource version; it applies
merge patches; it keeps events. Every write is atomic (a sibling file, then a rename), and
:meth:`LocalStore.lock` is an exclusive ``fcntl`` lock on the home folder, so two commands
(two ``train --local`` in two terminals) never interleave a read-modify-write.

Layout under the home folder (``$MODEL_GARDEN_HOME``, else ``$XDG_DATA_HOME/model-garden``,
default ``~/.local/share/model-garden``)::

    objects/<plural>/<name>.yaml   FineTuneJob, ModelVersion, InferenceDeployment, and the
                                   children the planners make: ConfigMaps, Jobs, Pods
    claims/<claim>/                a PersistentVolumeClaim (pvc://<claim>/…): artifacts/ by default
    pods/<pod>/                    one local pod: its log, termination message, ConfigMap volumes
                                   (its emptyDirs: a short folder in the system temp dir)
    events.jsonl                   the events the planners post
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.common import utcnow
from model_garden.api.registry import KINDS_BY_NAME
from model_garden.operator.status import timestamp

HOME_ENV = "MODEL_GARDEN_HOME"
NAMESPACE = "default"
"""Local mode has one namespace."""
R = TypeVar("R", FineTuneJob, ModelVersion, InferenceDeployment)

PLURALS = {
    **{name: kind.plural for name, kind in KINDS_BY_NAME.items()},
    "ConfigMap": "configmaps",
    "Job": "jobs",
    "Pod": "pods",
    "Deployment": "deployments",
    "Service": "services",
    "NetworkPolicy": "networkpolicies",
}


def default_home() -> Path:
    """``$MODEL_GARDEN_HOME``, else the XDG data dir's ``model-garden`` folder."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    return Path(data) / "model-garden"


class AlreadyExists(RuntimeError):
    """An object of that kind and name is in the store."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge, ``None`` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def write_atomic(target: Path, text: str) -> None:
    """Write a sibling file, then rename it over ``target``: readers see old or new, never half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)


class LocalStore:
    """Reads and writes resources as YAML files under ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._lock_depth = 0
        self._lock_file: Any = None

    # --- locking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's exclusive lock (re-entrant within this object)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.home.mkdir(parents=True, exist_ok=True)
        handle = (self.home / ".lock").open("a+")
        fcntl.flock(handle, fcntl.LOCK_EX)
        self._lock_file, self._lock_depth = handle, 1
        try:
            yield
        finally:
            self._lock_depth = 0
            self._lock_file = None
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    # --- paths --------------------------------------------------------------------------------

    def path_of(self, kind: str, name: str) -> Path:
        return self.home / "objects" / PLURALS[kind] / f"{name}.yaml"

    def claim_dir(self, claim: str) -> Path:
        """The folder standing for PersistentVolumeClaim ``claim``."""
        return self.home / "claims" / claim

    def pod_dir(self, pod: str) -> Path:
        return self.home / "pods" / pod

    def scratch_dir(self, pod: str) -> Path:
        """Where a pod's emptyDirs are: a short path under the system temp dir, because UNIX
        socket paths (vLLM makes its IPC sockets in the temp dir) must stay under 108 bytes."""
        key = hashlib.sha256(str(self.pod_dir(pod)).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"model-garden-pod-{key}"

    def host_path(self, pod_path: str) -> Path:
        """Where a path the operator's builders put in a pod (``/mnt/model-garden/<claim>/…``)
        is on this machine; other paths are this machine's already."""
        from model_garden.operator.storage import MOUNT_ROOT

        if not pod_path.startswith(MOUNT_ROOT + "/"):
            return Path(pod_path)
        claim, _, sub = pod_path.removeprefix(MOUNT_ROOT + "/").partition("/")
        return self.claim_dir(claim) / sub if sub else self.claim_dir(claim)

    def local_path(self, uri: str) -> Path:
        """Where an artifact URI is on this machine: a claim's folder, or a file:// path."""
        from model_garden.operator.storage import claim_sub_path, resolve

        location = resolve(uri)
        if location.claim is None:
            return Path(location.path)
        return self.claim_dir(location.claim) / claim_sub_path(location)

    # --- raw objects (dicts, as the API server holds them) ------------------------------------

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        path = self.path_of(kind, name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        body = yaml.safe_load(text)
        return body if isinstance(body, dict) else None

    def list_raw(self, kind: str) -> list[dict[str, Any]]:
        folder = self.home / "objects" / PLURALS[kind]
        out = []
        for path in sorted(folder.glob("*.yaml")):
            with contextlib.suppress(FileNotFoundError):  # deleted since the glob
                body = yaml.safe_load(path.read_text(encoding="utf-8"))
                if isinstance(body, dict):
                    out.append(body)
        return out

    def _write(self, body: dict[str, Any]) -> Path:
        target = self.path_of(body["kind"], body["metadata"]["name"])
        write_atomic(target, yaml.safe_dump(body, sort_keys=False, allow_unicode=True))
        return target

    def _next_resource_version(self) -> str:
        counter = self.home / ".resource-version"
        current = int(counter.read_text() or "0") if counter.exists() else 0
        write_atomic(counter, str(current + 1))
        return str(current + 1)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store a new object as the API server would (uid, creation time, generation);
        raises AlreadyExists when one of that name is there."""
        with self.lock():
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if self.get(obj["kind"], meta["name"]) is not None:
                raise AlreadyExists(f"{obj['kind']} {meta['name']} already exists")
            meta["namespace"] = NAMESPACE
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", timestamp(utcnow()))
            meta["generation"] = 1
            meta["resourceVersion"] = self._next_resource_version()
            self._write(obj)
            return obj

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch an object (None when it does not exist). A change of ``spec`` bumps
        ``metadata.generation``; ``metadata.resourceVersion`` in a patch is not compared:
        every read-modify-write happens under :meth:`lock`."""
        with self.lock():
            current = self.get(kind, name)
            if current is None:
                return None
            patch = copy.deepcopy(patch)
            (patch.get("metadata") or {}).pop("resourceVersion", None)
            updated = merge_patch(current, patch)
            meta = updated["metadata"]
            if updated.get("spec") != current.get("spec"):
                meta["generation"] = int(meta.get("generation") or 1) + 1
            if updated != current:
                meta["resourceVersion"] = self._next_resource_version()
                self._write(updated)
            return dict(updated)

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the object, or replace its spec and data (server-side apply of an owned one)."""
        with self.lock():
            current = self.get(body["kind"], body["metadata"]["name"])
            if current is None:
                return self.create(body)
            fields = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "status")}
            fields["metadata"] = {
                k: v for k, v in body["metadata"].items() if k in ("labels", "annotations")
            }
            return self.patch(body["kind"], body["metadata"]["name"], fields) or current

    def delete(self, kind: str, name: str) -> bool:
        """Remove an object; False when it was not there."""
        with self.lock():
            try:
                self.path_of(kind, name).unlink()
            except FileNotFoundError:
                return False
            if kind == "Pod":  # its volumes go with it; its log stays (`kubectl logs --previous`)
                shutil.rmtree(self.pod_dir(name) / "volumes", ignore_errors=True)
                shutil.rmtree(self.scratch_dir(name), ignore_errors=True)
            return True

    # --- typed resources ----------------------------------------------------------------------

    def save(self, resource: BaseModel) -> Path:
        """Write a typed resource as it is (tests and imports; planners go through create/patch)."""
        wire = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
        with self.lock():
            return self._write(wire)

    def list(self, model: type[R]) -> list[R]:
        kind = model.model_fields["kind"].default
        return [model.model_validate(body) for body in self.list_raw(kind)]

    def next_version(self, model_name: str) -> int:
        """The next integer version of ``model_name`` (1 for a new model)."""
        versions = [
            mv.spec.version for mv in self.list(ModelVersion) if mv.spec.model == model_name
        ]
        return max(versions, default=0) + 1

    # --- events -------------------------------------------------------------------------------

    def add_event(self, kind: str, name: str, type: str, reason: str, message: str) -> None:
        event = {
            "time": timestamp(utcnow()),
            "kind": kind,
            "name": name,
            "type": type,
            "reason": reason,
            "message": message,
        }
        with self.lock(), (self.home / "events.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")

    def events(self, kind: str, name: str) -> builtins.list[dict[str, Any]]:
        path = self.home / "events.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("kind") == kind and event.get("name") == name:
                    out.append(event)
        return out
