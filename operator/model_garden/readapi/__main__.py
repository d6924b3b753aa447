"""``python -m model_garden.readapi --local|--cluster``: the read API and the dashboard.

``--local`` serves the local store on 127.0.0.1 and prints the dashboard's URL with its write
token. ``--cluster`` serves the cluster of the pod's ServiceAccount (or of the kubeconfig's
context, ``--context``): every request carries the caller's own bearer token, reads come from
a watch cache filtered with their access reviews, writes are made with their token.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_garden.readapi", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--local", action="store_true", help="Serve the local store.")
    mode.add_argument("--cluster", action="store_true", help="Serve a cluster.")
    parser.add_argument("--home", type=Path, default=None, help="Local store folder.")
    parser.add_argument("--context", default=None, help="Cluster: kubeconfig context.")
    parser.add_argument(
        "--host", default=None, help="Address [local: 127.0.0.1 only; cluster: 0.0.0.0]."
    )
    parser.add_argument("--port", type=int, default=None, help="[local: 8765; cluster: 8080]")
    parser.add_argument("--prometheus-url", default=None)
    parser.add_argument(
        "--watch-namespace",
        action="append",
        default=[],
        help="Cluster: watch only this namespace (repeat) [default: every namespace].",
    )
    parser.add_argument("--no-reconcile", action="store_true", help="Local: run no local jobs.")
    args = parser.parse_args(argv)
    if args.cluster:
        from .serve import serve_cluster
        from .settings import ReadApiSettings

        settings = ReadApiSettings()
        if args.prometheus_url:
            settings.prometheus_url = args.prometheus_url
        if args.watch_namespace:
            settings.watch_namespaces = ",".join(args.watch_namespace)
        serve_cluster(
            args.context, host=args.host or "0.0.0.0", port=args.port or 8080, settings=settings
        )
        return 0
    if args.host not in (None, "127.0.0.1"):
        print(
            "error: local mode binds 127.0.0.1 only (writes need just its token)", file=sys.stderr
        )
        return 2
    from model_garden.local.store import default_home

    from .serve import serve_local

    serve_local(
        args.home or default_home(),
        port=args.port or 8765,
        prometheus_url=args.prometheus_url,
        reconcile=not args.no_reconcile,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
