"""Run the operator: in this process (a thread, for tests and benchmarks) or as the main program."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client, config

from model_garden.api.labels import GROUP

from .executor import Executor
from .handlers import Context, register
from .metrics import OperatorMetrics
from .plan import ObjectRef
from .policy import PolicyCache
from .settings import OperatorSettings

log = logging.getLogger(__name__)


def load_client(kubeconfig: str | Path | None = None) -> client.ApiClient:
    """An ApiClient from ``kubeconfig``, else in-cluster config, else the default kubeconfig."""
    if kubeconfig is not None:
        api: client.ApiClient = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        return api
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


def connection_info(api_client: client.ApiClient) -> kopf.ConnectionInfo:
    """kopf's credentials, taken from the same ApiClient the executor uses (one identity).

    The client's refresh hook runs first (in-cluster clients re-read their token file there),
    so calling this again after a token rotated gives the new token.
    """
    cfg = api_client.configuration
    if cfg.refresh_api_key_hook is not None:
        cfg.refresh_api_key_hook(cfg)
    token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if token and token.lower().startswith("bearer "):
        token = token[7:]
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        token=token,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )


ClientSource = Callable[[], client.ApiClient]
"""Makes an ApiClient from the credentials' source, read afresh at each call."""


def client_source(kubeconfig: str | Path | None) -> ClientSource:
    """Credentials re-read from the kubeconfig (its token or tokenFile) or the in-cluster
    token file at every call: tokens rotate (a projected ServiceAccount token does, hourly)."""
    return lambda: load_client(kubeconfig)


def build_registry(
    api_client: client.ApiClient,
    settings: OperatorSettings,
    metrics: OperatorMetrics,
    reload: ClientSource | None = None,
) -> tuple[kopf.OperatorRegistry, Context]:
    """The operator's handlers on a fresh registry.

    kopf calls the login handler at start and again whenever the API server answers 401, so
    the handler must read the credentials again (``reload``), never return what it read at
    start; the executor likewise reconnects through ``reload`` on a 401. Without ``reload``
    both use ``api_client``'s credentials (refreshed by its own hook, as in-cluster clients).
    """
    registry = kopf.OperatorRegistry()
    executor = Executor(
        api_client,
        timeout=(settings.api_connect_timeout_seconds, settings.api_read_timeout_seconds),
        reconnect=reload,
    )
    ctx = Context(
        settings=settings,
        executor=executor,
        metrics=metrics,
        policy_cache=policy_cache(executor, settings),
    )
    register(registry, ctx)

    @kopf.on.login(registry=registry)
    def _login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(reload() if reload is not None else api_client)

    return registry, ctx


def policy_cache(executor: Executor, settings: OperatorSettings) -> PolicyCache:
    """The admin policy, read through the executor (one bounded GET per expiry; the operator
    needs only ``get`` on that ConfigMap, no watch)."""
    ref = ObjectRef("v1", "ConfigMap", settings.policy_namespace, settings.policy_config_map)
    return PolicyCache(lambda: executor.get(ref), settings, ttl=settings.policy_cache_seconds)


WATCH_SERVER_TIMEOUT = 300


def kopf_settings(operator: OperatorSettings | None = None) -> kopf.OperatorSettings:
    """kopf's settings; every kopf request is bounded like the executor's (connect, total)."""
    operator = operator or OperatorSettings()
    settings = kopf.OperatorSettings()
    # Keep kopf's bookkeeping out of status (the schema is our API) and name it after us.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/kopf-finalizer"
    settings.posting.enabled = False  # the executor posts our events, with our reasons
    settings.scanning.disabled = True  # no CRD/namespace watching: fixed resources, less RBAC
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    # A watch stream silent past the server's own timeout is dead: drop it and re-watch.
    settings.watching.client_timeout = WATCH_SERVER_TIMEOUT + 30
    settings.watching.connect_timeout = operator.api_connect_timeout_seconds
    settings.networking.connect_timeout = operator.api_connect_timeout_seconds
    settings.networking.request_timeout = operator.api_read_timeout_seconds
    settings.execution.max_workers = 8
    return settings


class OperatorThread:
    """The operator in a background thread: ``start()`` waits until it watches, ``stop()`` ends it."""

    def __init__(
        self,
        api_client: client.ApiClient,
        settings: OperatorSettings | None = None,
        liveness_endpoint: str | None = None,
        reload: ClientSource | None = None,
    ) -> None:
        self.settings = settings or OperatorSettings()
        self.metrics = OperatorMetrics()
        self.registry, self.context = build_registry(
            api_client, self.settings, self.metrics, reload
        )
        self.liveness_endpoint = liveness_endpoint
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, name="model-garden-operator", daemon=True
        )

    def _main(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=self.registry,
                    settings=kopf_settings(self.settings),
                    clusterwide=not self.settings.namespaces,
                    namespaces=self.settings.namespaces,
                    standalone=True,
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                    liveness_endpoint=self.liveness_endpoint,
                )
            )
        except BaseException as exc:  # surfaced by start()/stop()
            self._error = exc
            self._ready.set()

    def start(self, timeout: float = 60) -> OperatorThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("operator did not become ready")
        if self._error is not None:
            raise RuntimeError("operator failed to start") from self._error
        return self

    def stop(self, timeout: float = 30) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.metrics.stop()
        if self._thread.is_alive():
            log.warning("operator thread did not stop in %ss", timeout)

    def __enter__(self) -> OperatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m model_garden.operator``: metrics on :8080/metrics, liveness on :8081/healthz."""
    import argparse

    parser = argparse.ArgumentParser(description="Model Garden operator")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = OperatorSettings()
    api_client = load_client(args.kubeconfig)
    metrics = OperatorMetrics()
    registry, _ctx = build_registry(
        api_client, settings, metrics, reload=client_source(args.kubeconfig)
    )
    metrics.serve(settings.metrics_port)
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    asyncio.run(
        kopf.operator(
            registry=registry,
            settings=kopf_settings(settings),
            clusterwide=not settings.namespaces,
            namespaces=settings.namespaces,
            standalone=True,
            liveness_endpoint=liveness,
        )
    )
