"""``model-garden dashboard``: the read API and the web dashboard, on this machine."""

from __future__ import annotations

import click

from .errors import CliError
from .target import ClusterBackend, LocalBackend, Target, target_options


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--prometheus-url", help="History from this Prometheus (query_range).")
@click.option("--no-browser", is_flag=True, help="Print the URL; do not open a browser.")
@target_options
def dashboard(target: Target, port: int, prometheus_url: str | None, no_browser: bool) -> None:
    """Start the dashboard on 127.0.0.1 and print its URL.

    Local mode: the URL carries the token writes need. A cluster (the kubeconfig's context):
    every request carries the caller's own bearer token, so Kubernetes RBAC decides.

    \b
    Example:
      mg dashboard --local --no-browser
    """
    backend = target.backend()
    if isinstance(backend, ClusterBackend):
        from model_garden.readapi.serve import serve_cluster
        from model_garden.readapi.settings import ReadApiSettings

        # on this machine only: callers still bring their own token, RBAC still decides
        serve_cluster(
            backend.context,
            host="127.0.0.1",
            port=port,
            settings=ReadApiSettings(prometheus_url=prometheus_url),
            open_browser=not no_browser,
            echo=click.echo,
        )
        return
    if not isinstance(backend, LocalBackend):
        raise CliError(f"the dashboard cannot serve {backend.where}")
    from model_garden.readapi.serve import serve_local

    serve_local(
        backend.store.home,
        port=port,
        prometheus_url=prometheus_url,
        open_browser=not no_browser,
        echo=click.echo,
    )
