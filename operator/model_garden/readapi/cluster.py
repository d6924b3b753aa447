"""The cluster source: a watch-backed cache of the three kinds, filtered per caller.

One thread per kind lists every namespace once, then watches from the list's resourceVersion
(resumed from the last event's; a 410 Gone means the history was compacted: list again), so a
list request never reaches the API server. What a caller sees is filtered with
SelfSubjectAccessReviews made with the caller's own token (may they ``list`` that resource in that
namespace?), cached per token, namespace, resource and verb for ``access_ttl`` seconds. Writes are
made with the caller's token, so Kubernetes RBAC decides; its refusal is passed on as it came.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Literal

from model_garden.api import GROUP, VERSION
from model_garden.api.registry import KINDS_BY_NAME

from . import history
from .source import KINDS, ApiError, Broadcaster, Caller, Change

log = logging.getLogger("model_garden.readapi.cluster")
API = f"{GROUP}/{VERSION}"
PLURAL = {kind: KINDS_BY_NAME[kind].plural for kind in KINDS}
WATCH_SECONDS = 30


def _message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


class ClusterSource:
    """The cache (made with the read API's own identity) and per-caller access and writes."""

    mode: Literal["local", "cluster"] = "cluster"

    def __init__(
        self,
        api_client: Any,
        *,
        artifacts_dir: Path | None = None,
        access_ttl: float = 30.0,
        watch_seconds: int = WATCH_SECONDS,
        namespaces: list[str] | None = None,
    ) -> None:
        """``namespaces``: watch only these (a read API whose identity has Roles in them alone,
        the chart's ``rbac.scope=namespaced``); None: every namespace (a ClusterRole)."""
        self.api = api_client
        self.watched = sorted(namespaces) if namespaces else None
        self.artifacts_dir = artifacts_dir
        self.access_ttl = access_ttl
        self.watch_seconds = watch_seconds
        self.changes = Broadcaster()
        self.generation = 0
        self._lock = threading.Lock()
        self._cache: dict[str, dict[tuple[str, str], dict[str, Any]]] = {k: {} for k in KINDS}
        scopes: list[str | None] = list(self.watched) if self.watched else [None]
        self._streams = [(kind, ns) for kind in KINDS for ns in scopes]
        self._synced = {stream: threading.Event() for stream in self._streams}
        self._access: dict[tuple[str, str, str, str], tuple[float, bool]] = {}
        self._namespaces: tuple[float, list[str]] = (0.0, [])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.relists: dict[tuple[str, str | None], int] = dict.fromkeys(self._streams, 0)
        """How many times each (kind, namespace) was listed (the first, then after each 410)."""

    # --- the cache ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            return
        self._stop = threading.Event()  # threads of an earlier start keep theirs, which is set
        for kind, namespace in self._streams:
            thread = threading.Thread(
                target=self._run, args=(kind, namespace), name=f"watch-{kind}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def wait_synced(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        return all(e.wait(max(0.0, deadline - time.monotonic())) for e in self._synced.values())

    def stop(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + 2.0
        for thread in self._threads:  # a watch blocked on a quiet stream ends at its timeout;
            thread.join(timeout=max(0.0, deadline - time.monotonic()))  # daemons: never wait it
        self._threads = []

    def _run(self, kind: str, namespace: str | None) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException

        api = client.CustomObjectsApi(self.api)
        plural = PLURAL[kind]
        if namespace is None:
            lister: Any = api.list_cluster_custom_object
            args: tuple[str, ...] = (GROUP, VERSION, plural)
        else:
            lister, args = api.list_namespaced_custom_object, (GROUP, VERSION, namespace, plural)
        version: str | None = None
        stop = self._stop
        while not stop.is_set():
            try:
                if version is None:
                    listed: Any = lister(*args)
                    version = str(listed["metadata"]["resourceVersion"])
                    self._replace(kind, listed.get("items") or [], namespace)
                    self.relists[(kind, namespace)] += 1
                    self._synced[(kind, namespace)].set()
                stream: Any = watch.Watch()  # type: ignore[no-untyped-call]
                for event in stream.stream(
                    lister,
                    *args,
                    resource_version=version,
                    timeout_seconds=self.watch_seconds,
                    allow_watch_bookmarks=True,
                ):
                    if stop.is_set():
                        stream.stop()
                        break
                    obj, type_ = event["object"], event["type"]
                    if type_ == "ERROR":
                        if obj.get("code") == 410:
                            version = None
                            break
                        raise RuntimeError(obj.get("message") or str(obj))
                    version = str(obj["metadata"]["resourceVersion"])
                    if type_ != "BOOKMARK":
                        self._apply(kind, type_, obj)
            except ApiException as exc:
                if exc.status == 410:  # compacted: list again
                    version = None
                    continue
                log.warning("watching %s: %s", plural, _message(exc))
                stop.wait(1.0)
            except Exception:  # a broken connection: resume from the last resourceVersion
                log.exception("watching %s failed", plural)
                stop.wait(1.0)

    def _publish(self, changes: list[Change]) -> None:
        for change in changes:
            self.changes.publish(change)

    def _replace(
        self, kind: str, items: list[dict[str, Any]], namespace: str | None = None
    ) -> None:
        """A fresh list (of one namespace, or all): what differs from the cache is published."""
        fresh = {_key(o): o for o in items}
        found: list[Change] = []
        with self._lock:
            old = {
                k: v for k, v in self._cache[kind].items() if namespace is None or k[0] == namespace
            }
            for key, obj in fresh.items():
                before = old.get(key)
                rv = str(obj["metadata"].get("resourceVersion") or "")
                if before is None:
                    found.append(_change(kind, "ADDED", obj))
                elif before["metadata"].get("resourceVersion") != rv:
                    found.append(_change(kind, "MODIFIED", obj))
            found += [_change(kind, "DELETED", old[key]) for key in set(old) - set(fresh)]
            for key in set(old) - set(fresh):
                del self._cache[kind][key]
            self._cache[kind].update(fresh)
            self.generation += len(found) + 1
        self._publish(found)

    def _apply(self, kind: str, type_: str, obj: dict[str, Any]) -> None:
        with self._lock:
            if type_ == "DELETED":
                self._cache[kind].pop(_key(obj), None)
            else:
                self._cache[kind][_key(obj)] = obj
            self.generation += 1
        self._publish([_change(kind, type_, obj)])

    # --- who may see what ---------------------------------------------------------------------

    def _caller_client(self, caller: Caller) -> Any:
        from kubernetes import client

        if not caller.token:
            raise ApiError(401, "send your Kubernetes bearer token (Authorization: Bearer)")
        base = self.api.configuration
        config = client.Configuration()
        config.host = base.host
        config.verify_ssl = base.verify_ssl
        config.ssl_ca_cert = base.ssl_ca_cert
        config.api_key = {"BearerToken": f"Bearer {caller.token}"}
        return client.ApiClient(config)

    def _executor(self, caller: Caller) -> Any:
        from model_garden.operator.executor import Executor

        return Executor(
            self._caller_client(caller), component="model-garden-readapi", timeout=(3.0, 20.0)
        )

    def allowed(
        self, caller: Caller, verb: str, resource: str, namespace: str, group: str = GROUP
    ) -> bool:
        """May the caller ``verb`` ``resource`` in ``namespace``? A SelfSubjectAccessReview made
        with their token, its answer reused for ``access_ttl`` seconds."""
        from kubernetes.client.exceptions import ApiException

        if not caller.token:
            raise ApiError(401, "send your Kubernetes bearer token (Authorization: Bearer)")
        key = (caller.token, namespace, f"{group}/{resource}", verb)
        now = time.monotonic()
        with self._lock:
            cached = self._access.get(key)
        if cached and now - cached[0] < self.access_ttl:
            return cached[1]
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "group": group,
                    "resource": resource,
                    "verb": verb,
                    "namespace": namespace,
                }
            },
        }
        try:
            answer = self._executor(caller).call(
                "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review
            )
        except ApiException as exc:
            if exc.status == 401:
                raise ApiError(401, f"the cluster refused the token: {_message(exc)}") from exc
            raise ApiError(502, f"access review failed: {_message(exc)}") from exc
        allowed = bool((answer.get("status") or {}).get("allowed"))
        with self._lock:
            if len(self._access) > 10_000:
                self._access.clear()
            self._access[key] = (now, allowed)
        return allowed

    def _all_namespaces(self) -> list[str]:
        """The cluster's namespaces (listed with the read API's identity, every access_ttl)."""
        from kubernetes import client

        if self.watched is not None:
            return list(self.watched)
        stamp, names = self._namespaces
        if time.monotonic() - stamp < self.access_ttl and names:
            return names
        found = {ns for cache in self._cache.values() for ns, _ in list(cache)}
        with contextlib.suppress(Exception):
            listed = client.CoreV1Api(self.api).list_namespace().items
            found |= {str(n.metadata.name) for n in listed if n.metadata and n.metadata.name}
        names = sorted(found)
        self._namespaces = (time.monotonic(), names)
        return names

    def namespaces(self, caller: Caller) -> list[str]:
        """The namespaces where the caller may list at least one of the three kinds (none for
        a request without a token: ``/info`` answers it, for probes and the login screen)."""
        if not caller.token:
            return []
        return [
            ns
            for ns in self._all_namespaces()
            if any(self.allowed(caller, "list", PLURAL[k], ns) for k in KINDS)
        ]

    # --- reads --------------------------------------------------------------------------------

    def items(
        self, kind: str, caller: Caller, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            cached = list(self._cache[kind].items())
        visible: dict[str, bool] = {}
        out = []
        for (ns, _), obj in cached:
            if namespace is not None and ns != namespace:
                continue
            if ns not in visible:
                visible[ns] = self.allowed(caller, "list", PLURAL[kind], ns)
            if visible[ns]:
                out.append(obj)
        if namespace is not None and not cached:
            self.allowed(caller, "list", PLURAL[kind], namespace)  # a bad token is still a 401
        return out

    def get(self, kind: str, namespace: str, name: str, caller: Caller) -> dict[str, Any] | None:
        if not self.allowed(caller, "get", PLURAL[kind], namespace):
            return None
        with self._lock:
            return self._cache[kind].get((namespace, name))

    def events(self, kind: str, namespace: str, name: str, caller: Caller) -> list[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        selector = f"involvedObject.name={name},involvedObject.kind={kind}"
        try:
            result = self._executor(caller).call(
                "GET", f"/api/v1/namespaces/{namespace}/events", query=[("fieldSelector", selector)]
            )
        except ApiException:  # events are extra: a caller who may not read them gets none
            return []
        return [
            {
                "time": e.get("lastTimestamp")
                or e.get("eventTime")
                or (e.get("metadata") or {}).get("creationTimestamp"),
                "type": e.get("type"),
                "reason": e.get("reason"),
                "message": e.get("message"),
            }
            for e in result.get("items") or []
        ]

    # --- writes, as the caller ----------------------------------------------------------------

    def authorize_write(self, caller: Caller) -> None:
        if not caller.token:
            raise ApiError(401, "send your Kubernetes bearer token (Authorization: Bearer)")

    def authorize_upload(self, namespace: str, caller: Caller) -> None:
        """Who may start a FineTuneJob in a namespace may store its datasets there."""
        if not self.allowed(caller, "create", PLURAL["FineTuneJob"], namespace):
            raise ApiError(403, f"you may not create finetunejobs in namespace {namespace}")

    def _as_caller(
        self,
        caller: Caller,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        from model_garden.operator.executor import ApiTimeout

        try:
            result: dict[str, Any] = self._executor(caller).call(
                method, path, body, content_type=content_type
            )
        except ApiException as exc:
            raise ApiError(exc.status or 502, _message(exc)) from exc
        except ApiTimeout as exc:
            raise ApiError(504, str(exc)) from exc
        return result

    @staticmethod
    def _path(kind: str, namespace: str, name: str = "") -> str:
        base = f"/apis/{API}/namespaces/{namespace}/{PLURAL[kind]}"
        return f"{base}/{name}" if name else base

    def create(self, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
        namespace = str((body.get("metadata") or {}).get("namespace") or "default")
        body = {**body, "metadata": {**body["metadata"], "namespace": namespace}}
        return self._as_caller(caller, "POST", self._path(body["kind"], namespace), body)

    def patch(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], caller: Caller
    ) -> dict[str, Any]:
        return self._as_caller(
            caller,
            "PATCH",
            self._path(kind, namespace, name),
            patch,
            "application/merge-patch+json",
        )

    def scale(self, namespace: str, name: str, replicas: int, caller: Caller) -> dict[str, Any]:
        """Through the /scale subresource: RBAC on ``inferencedeployments/scale`` decides."""
        path = self._path("InferenceDeployment", namespace, name) + "/scale"
        self._as_caller(
            caller, "PATCH", path, {"spec": {"replicas": replicas}}, "application/merge-patch+json"
        )
        return self._as_caller(caller, "GET", self._path("InferenceDeployment", namespace, name))

    def delete(self, kind: str, namespace: str, name: str, caller: Caller) -> None:
        self._as_caller(
            caller, "DELETE", self._path(kind, namespace, name), {"propagationPolicy": "Background"}
        )

    # --- files (the artifacts claim, when mounted) --------------------------------------------

    def _claim_path(self, uri: str) -> Path | None:
        prefix = f"pvc://{history.ARTIFACTS_CLAIM}/"
        if self.artifacts_dir is None or not uri.startswith(prefix):
            return None
        parts = [p for p in uri.removeprefix(prefix).split("/") if p not in ("", ".")]
        return None if ".." in parts else self.artifacts_dir.joinpath(*parts)

    def job_history_file(self, ftj: dict[str, Any], caller: Caller) -> Path | None:
        uri = history.job_output_uri(ftj, None)
        folder = self._claim_path(uri) if uri else None
        return folder / history.JOB_HISTORY if folder else None

    def meter_history_files(self, idep: dict[str, Any], caller: Caller) -> list[Path]:
        return []  # the meter's file is in its pod's emptyDir: in a cluster, Prometheus keeps it

    def datasets_dir(self, namespace: str) -> Path | None:
        return self.artifacts_dir / namespace / "datasets" if self.artifacts_dir else None


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _change(kind: str, type_: Any, obj: dict[str, Any]) -> Change:
    meta = obj.get("metadata") or {}
    return Change(
        kind,
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        type_,
        str(meta.get("resourceVersion") or ""),
    )
