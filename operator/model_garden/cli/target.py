"""Where a command acts: a cluster (the kubeconfig's context) or local mode (the store).

The same command lines work in both. Local mode is chosen by ``--local``, by ``mode: local`` in
the config, or when no cluster is configured (no kubeconfig with a context, not in a pod). A
configured cluster that cannot be reached is an error (exit 4), never a fall-back to local mode.

Both backends hand out the objects as plain dicts, exactly as the API server (or the store)
holds them; the local one runs the operator's reconcilers (:mod:`model_garden.local`) before
each read, so what it shows is what the operator would have made of the same objects.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click
import yaml

from . import config as cli_config
from .errors import CliError, Exists, InvalidInput, NotFound, Unreachable

F = TypeVar("F", bound=Callable[..., Any])
API = "modelgarden.dev/v1alpha1"
GC_WAIT_SECONDS = 120.0
"""How long a local delete waits for a stopped trainer to end (its grace period is 90 s)."""


class Backend(Protocol):
    namespace: str
    where: str
    local: bool

    def refresh(self) -> None: ...
    def get(self, kind: str, name: str) -> dict[str, Any] | None: ...
    def items(self, kind: str) -> list[dict[str, Any]]: ...
    def create(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None: ...
    def delete(self, kind: str, name: str) -> None: ...
    def logs(self, job: dict[str, Any]) -> str: ...
    def events(self, kind: str, name: str) -> list[dict[str, Any]]: ...


def must_get(backend: Backend, kind: str, name: str) -> dict[str, Any]:
    obj = backend.get(kind, name)
    if obj is None:
        raise NotFound(f"{kind} {name} not found ({backend.where})")
    return obj


# --- local mode ---------------------------------------------------------------------------------


class LocalBackend:
    """The store under ``home``, reconciled by the operator's planners."""

    local = True
    namespace = "default"

    def __init__(self, home: Path, settings: dict[str, Any]) -> None:
        from model_garden.local.controller import LocalController
        from model_garden.local.store import LocalStore
        from model_garden.operator.settings import OperatorSettings

        self.store = LocalStore(home)
        self.where = f"local store {home}"
        overrides: dict[str, Any] = {}
        if settings.get("country"):
            overrides["default_country"] = settings["country"]
        if settings.get("region"):
            overrides["default_region"] = settings["region"]
        self.controller = LocalController(self.store, OperatorSettings(**overrides))

    def refresh(self) -> None:
        self.controller.reconcile()

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.store.get(kind, name)

    def items(self, kind: str) -> list[dict[str, Any]]:
        return self.store.list_raw(kind)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        from model_garden.local.store import AlreadyExists

        try:
            return self.store.create(body)
        except AlreadyExists as exc:
            raise Exists(f"{exc} ({self.where})") from exc

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        if self.store.patch(kind, name, patch) is None:
            raise NotFound(f"{kind} {name} not found ({self.where})")

    def delete(self, kind: str, name: str) -> None:
        """Delete as the API server does (at once, or marked while finalizers hold it), then
        collect the garbage until no child is left: a running trainer is stopped (SIGTERM, its
        grace period) before this returns."""
        import time

        from model_garden.api.common import utcnow
        from model_garden.local import jobs
        from model_garden.operator.status import timestamp

        with self.store.lock():
            obj = must_get(self, kind, name)
            if obj["metadata"].get("finalizers"):
                stamp = {"metadata": {"deletionTimestamp": timestamp(utcnow())}}
                self.store.patch(kind, name, stamp)
            else:
                self.store.delete(kind, name)
        deadline = time.monotonic() + GC_WAIT_SECONDS
        self.refresh()
        while jobs.orphans(self.store) and time.monotonic() < deadline:
            time.sleep(0.5)
            self.refresh()

    def logs(self, job: dict[str, Any]) -> str:
        from model_garden.local import pods

        mine = self._pods(job)
        return pods.log_text(self.store, mine[0]["metadata"]["name"]) if mine else ""

    def _pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        from model_garden.api.labels import LABEL_FTJ_UID
        from model_garden.operator import observe

        uid = job["metadata"].get("uid")
        mine = [
            p
            for p in self.store.list_raw("Pod")
            if (p["metadata"].get("labels") or {}).get(LABEL_FTJ_UID) == uid
        ]
        return observe.newest_first(mine)

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        return self.store.events(kind, name)


# --- a cluster ----------------------------------------------------------------------------------


class ClusterBackend:
    """The API server of a kubeconfig context, through the operator's executor (bounded calls)."""

    local = False

    def __init__(self, context: str | None, namespace: str | None) -> None:
        from kubernetes import config as kube_config

        from model_garden.operator.executor import Executor

        # The client reads $KUBECONFIG once, at import: read it now.
        kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        try:
            contexts, current = kube_config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        except (kube_config.ConfigException, OSError) as exc:
            raise InvalidInput(f"cannot read the kubeconfig: {exc}") from exc
        chosen = next((c for c in contexts if c["name"] == context), None) if context else current
        if chosen is None:
            names = ", ".join(c["name"] for c in contexts) or "none"
            raise InvalidInput(f"no context {context!r} in the kubeconfig (contexts: {names})")
        self.context = chosen["name"]
        self.namespace = namespace or chosen.get("context", {}).get("namespace") or "default"
        try:
            api = kube_config.new_client_from_config(config_file=kubeconfig, context=self.context)  # type: ignore[no-untyped-call]
        except (kube_config.ConfigException, OSError) as exc:
            raise InvalidInput(f"kubeconfig context {self.context}: {exc}") from exc
        self.server = api.configuration.host
        self.where = f"context {self.context}, namespace {self.namespace}"
        self.x = Executor(api, component="model-garden-cli", timeout=(3.0, 20.0))

    def request(self, method: str, path: str, what: str, body: Any = None) -> Any:
        """One raw API request (paths the executor has no verb for), errors as CLI errors."""
        return self.guarded(lambda: self.x.call(method, path, body), what)

    def guarded(self, fn: Callable[[], Any], what: str) -> Any:
        """Run one API call; its failures become the CLI's one-line errors and exit codes."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        from model_garden.operator.executor import ApiTimeout

        try:
            return fn()
        except (urllib3.exceptions.HTTPError, ApiTimeout, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Unreachable(
                f"cannot reach the cluster of context {self.context} ({self.server}): {reason}"
            ) from exc
        except ApiException as exc:
            message = _api_message(exc)
            if exc.status in (401, 403):
                raise Unreachable(f"{what}: the cluster refused: {message}") from exc
            if exc.status == 404:
                raise NotFound(f"{what}: not found ({self.where}): {message}") from exc
            if exc.status == 409:
                raise Exists(f"{what}: {message}") from exc
            if exc.status == 422:
                raise InvalidInput(f"{what}: {message}") from exc
            raise CliError(f"{what}: {message}") from exc

    def _ref(self, kind: str, name: str) -> Any:
        from model_garden.operator.plan import ObjectRef

        return ObjectRef(API, kind, self.namespace, name)

    def refresh(self) -> None:
        return None  # the operator reconciles

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.guarded(
            lambda: self.x.get(self._ref(kind, name)), f"reading {kind} {name}"
        )
        return result

    def items(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.guarded(
            lambda: self.x.list_objects(API, kind, self.namespace), f"listing {kind}s"
        )
        return sorted(items, key=lambda o: o["metadata"]["name"])

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        from model_garden.operator.executor import collection_path

        body = {**body, "metadata": {**body["metadata"], "namespace": self.namespace}}
        path = collection_path(body["apiVersion"], body["kind"], self.namespace)
        created: dict[str, Any] = self.guarded(
            lambda: self.x.call("POST", path, body),
            f"creating {body['kind']} {body['metadata']['name']}",
        )
        return created

    def patch(self, kind: str, name: str, patch: dict[str, Any]) -> None:
        self.guarded(lambda: self.x.merge_patch(self._ref(kind, name), patch), f"{kind} {name}")

    def delete(self, kind: str, name: str) -> None:
        must_get(self, kind, name)
        self.guarded(lambda: self.x.delete(self._ref(kind, name)), f"deleting {kind} {name}")

    def logs(self, job: dict[str, Any]) -> str:
        from model_garden.api.labels import LABEL_FTJ_UID

        return self.pod_log(f"{LABEL_FTJ_UID}={job['metadata'].get('uid')}")

    def pod_log(self, selector: str) -> str:
        """The log of the newest pod the label ``selector`` matches ("" when there is none)."""
        from kubernetes import client

        from model_garden.operator import observe

        pods = observe.newest_first(
            self.guarded(
                lambda: self.x.list_objects("v1", "Pod", self.namespace, selector), "listing pods"
            )
        )
        if not pods:
            return ""
        core = client.CoreV1Api(self.x.api)
        name = pods[0]["metadata"]["name"]
        text = self.guarded(
            lambda: core.read_namespaced_pod_log(
                name, self.namespace, _request_timeout=self.x.timeout
            ),
            f"reading the log of pod {name}",
        )
        return str(text)

    def delete_job(self, name: str) -> None:
        """Delete a Job and (in the background) its pods; gone already is fine."""
        from model_garden.operator.plan import ObjectRef

        ref = ObjectRef("batch/v1", "Job", self.namespace, name)
        self.guarded(lambda: self.x.delete(ref), f"deleting Job {name}")

    def events(self, kind: str, name: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.name={name},involvedObject.kind={kind}"
        from model_garden.operator.executor import collection_path

        try:
            result = self.guarded(
                lambda: self.x.call(
                    "GET",
                    collection_path("v1", "Event", self.namespace),
                    query=[("fieldSelector", selector)],
                ),
                "reading events",
            )
        except CliError:  # events are extra: a user who may not read them still gets the job
            return []
        return [
            {
                "time": e.get("lastTimestamp") or e.get("eventTime"),
                "type": e.get("type"),
                "reason": e.get("reason"),
                "message": e.get("message"),
            }
            for e in result.get("items") or []
        ]


def _api_message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


# --- choosing one -------------------------------------------------------------------------------


def cluster_configured() -> bool:
    """In a pod, or a kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``) with a current context."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    paths = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    for path in paths.split(os.pathsep):
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict) and doc.get("current-context"):
            return True
    return False


@dataclass
class Target:
    local: bool
    context: str | None
    namespace: str | None
    home: Path | None

    def backend(self) -> Backend:
        settings = cli_config.load()
        mode = "local" if self.local else str(settings.get("mode") or "auto")
        context = self.context or settings.get("context")
        namespace = self.namespace or settings.get("namespace")
        if mode == "auto":
            mode = "cluster" if context or cluster_configured() else "local"
        if mode == "cluster":
            return ClusterBackend(context, namespace)
        if self.namespace and self.namespace != "default":
            raise InvalidInput("local mode has one namespace, default: drop --namespace")
        from model_garden.local.store import default_home

        home = self.home or (Path(settings["home"]) if settings.get("home") else default_home())
        return LocalBackend(home, settings)


def target_options(fn: F) -> F:
    """``--local``, ``--context``, ``--namespace``, ``--home``: passed as ``target``."""

    @click.option("--local", is_flag=True, help="Local mode, whatever is configured.")
    @click.option("--context", help="kubeconfig context [default: the current one].")
    @click.option("-n", "--namespace", help="Namespace in the cluster [default: the context's].")
    @click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        help="Local mode's folder [default: $MODEL_GARDEN_HOME or ~/.local/share/model-garden].",
    )
    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        local: bool,
        context: str | None,
        namespace: str | None,
        home: Path | None,
        **kwargs: Any,
    ) -> Any:
        return fn(
            *args, target=Target(local or home is not None, context, namespace, home), **kwargs
        )

    return wrapper  # type: ignore[return-value]
