"""Running the read API: local mode on 127.0.0.1 with a fresh write token."""

from __future__ import annotations

import os
import secrets
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .app import create_app
from .settings import ReadApiSettings

LOOPBACK = "127.0.0.1"


def dashboard_url(host: str, port: int, token: str) -> str:
    """Where to open the dashboard: the token rides in the fragment, which no request sends."""
    return f"http://{host}:{port}/#token={token}"


def serve_local(
    home: Path,
    *,
    port: int = 8765,
    prometheus_url: str | None = None,
    open_browser: bool = False,
    echo: Callable[[str], None] = print,
    reconcile: bool = True,
) -> None:
    """Serve the local store on 127.0.0.1 (never another address: local writes need only the
    token, so nothing off this machine may reach it), print the URL, block until Ctrl-C."""
    import uvicorn

    from .local import LocalSource

    token = secrets.token_urlsafe(24)
    source = LocalSource(home, token=token, reconcile=reconcile)
    app = create_app(source, ReadApiSettings(token=token, prometheus_url=prometheus_url))
    config = uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning")
    server = uvicorn.Server(config)
    url = dashboard_url(LOOPBACK, port, token)
    echo(f"Model Garden dashboard (local store {home}): {url}")
    echo("Writes need the token in that URL; Ctrl-C stops.")
    if open_browser:
        webbrowser.open(url)
    server.run()


def cluster_client(context: str | None) -> Any:
    """The read API's own identity for its watch cache: the pod's ServiceAccount in a cluster,
    else the kubeconfig's context."""
    from kubernetes import config

    if os.environ.get("KUBERNETES_SERVICE_HOST") and context is None:
        from kubernetes import client

        config.load_incluster_config()  # type: ignore[no-untyped-call]
        return client.ApiClient()
    return config.new_client_from_config(context=context)  # type: ignore[no-untyped-call]


def serve_cluster(
    context: str | None,
    *,
    host: str = "0.0.0.0",  # noqa: S104 (in a pod, behind its Service)
    port: int = 8080,
    settings: ReadApiSettings | None = None,
    open_browser: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve a cluster: every request carries its caller's own bearer token (the dashboard asks
    for one); reads come from the watch cache filtered by the caller's access reviews, writes are
    made with the caller's token."""
    import uvicorn

    from .cluster import ClusterSource

    settings = settings or ReadApiSettings()
    source = ClusterSource(
        cluster_client(context),
        artifacts_dir=settings.artifacts_dir,
        access_ttl=settings.access_cache_seconds,
        namespaces=settings.watched(),
    )
    app = create_app(source, settings)
    url = f"http://{host}:{port}/"
    echo(f"Model Garden read API (cluster{f', context {context}' if context else ''}): {url}")
    echo("Requests carry your own Kubernetes bearer token (the dashboard asks for it).")
    if open_browser:
        webbrowser.open(url)
    uvicorn.run(app, host=host, port=port, log_level="warning")
