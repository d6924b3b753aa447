"""Read API under load (a script, not a test): p50/p95 of list and summary routes.

A local store is filled with ``--resources`` objects (by default 5,000: FineTuneJobs,
ModelVersions and InferenceDeployments in equal parts, with status and carbon), served by
uvicorn in this process on a free port; ``--clients`` concurrent httpx clients (16) each send
``--requests`` requests per route. Printed: p50, p95 and throughput per route, and as JSON.

Run: ``uv run python bench/readapi_load.py [--resources 5000] [--clients 16] [--requests 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "tests")]

import httpx  # noqa: E402
import uvicorn  # noqa: E402

from model_garden.local.store import LocalStore  # noqa: E402
from model_garden.readapi import ReadApiSettings, create_app  # noqa: E402
from model_garden.readapi.local import LocalSource  # noqa: E402
from readapi.fill import ftj, idep, idep_status, job_status, mv  # noqa: E402

ROUTES = [
    "/api/v1/finetunejobs?limit=50",
    "/api/v1/finetunejobs?limit=50&experiment=exp-3&condition=Succeeded",
    "/api/v1/modelversions?limit=50",
    "/api/v1/inferencedeployments?limit=50",
    "/api/v1/overview",
    "/api/v1/carbon/summary?by=model",
    "/api/v1/carbon/models",
    "/api/v1/experiments",
]


def fill(store: LocalStore, count: int) -> None:
    third = count // 3
    for i in range(third):
        body = ftj(f"job-{i:05d}", model=f"m{i:05d}", experiment=f"exp-{i % 20}")
        body["status"] = job_status(
            "Succeeded", loss=1.0, kg=0.001, kwh=0.01, version=f"m{i:05d}-v1"
        )
        store.create(body)
    for i in range(third):
        store.create(mv(f"m{i:05d}", 1, job=f"job-{i:05d}"))
    for i in range(count - 2 * third):
        body = idep(f"d{i:05d}", f"m{i:05d}-v1")
        body["status"] = idep_status(
            f"m{i:05d}-v1", kg=0.002, kwh=0.01, tokens=1000, measured=i % 2 == 0
        )
        store.create(body)


async def hammer(base: str, route: str, clients: int, requests: int) -> dict[str, Any]:
    latencies: list[float] = []

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for _ in range(requests):
                t0 = time.perf_counter()
                reply = await http.get(route)
                latencies.append(time.perf_counter() - t0)
                reply.raise_for_status()

    t0 = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    q = statistics.quantiles(latencies, n=20)
    return {
        "route": route,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(q[18] * 1000, 1),
        "requests_per_s": round(len(latencies) / wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=20, help="Per client and route.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = LocalStore(Path(tmp) / "home")
        t0 = time.perf_counter()
        fill(store, args.resources)
        print(f"filled {args.resources} resources in {time.perf_counter() - t0:.1f}s")
        source = LocalSource(store.home)
        app = create_app(source, ReadApiSettings(static_dir=Path(tmp) / "none"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        results = []
        try:
            for route in ROUTES:
                result = asyncio.run(hammer(base, route, args.clients, args.requests))
                results.append(result)
                print(
                    f"{route:70s} p50 {result['p50_ms']:8.1f} ms  p95 {result['p95_ms']:8.1f} ms"
                    f"  {result['requests_per_s']:7.1f} req/s"
                )
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    print(json.dumps({"resources": args.resources, "clients": args.clients, "routes": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
