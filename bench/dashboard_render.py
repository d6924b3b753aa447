"""The dashboard's first render and bundle size (a script, not a test).

1. Bundle: the built app the read API serves (``model_garden/readapi/static``): raw and gzip
   (level 9) bytes of index.html and each asset, and their totals.
2. First render of the overview in Chromium (Playwright driving Debian's Chromium,
   ``$MODEL_GARDEN_CHROMIUM``, default /usr/bin/chromium) against the read API in local mode on a
   small local store (``--jobs`` FineTuneJobs with their ModelVersions): for each of ``--runs``
   fresh browser contexts (empty cache), the navigation timing (response end, DOMContentLoaded,
   load), the first contentful paint, and the first-content marker: when the overview's
   "Running jobs" figure (``data-testid="overview-running-jobs"``) is first in the DOM, i.e. the
   app booted, called ``/api/v1/overview`` and rendered the answer. Medians are printed.

Run: ``uv run python bench/dashboard_render.py [--runs 7] [--jobs 20]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator")]

from model_garden.local.store import LocalStore  # noqa: E402

STATIC = ROOT / "operator" / "model_garden" / "readapi" / "static"
API = "modelgarden.dev/v1alpha1"
MARKER = '[data-testid="overview-running-jobs"]'
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Records when the marker first appears (performance.now(), ms since navigation start).
WATCH_MARKER = """
(() => {
  const seen = () => {
    if (document.querySelector(MARKER_SELECTOR)) { window.__mgFirstContent = performance.now(); return true; }
    return false;
  };
  const start = () => {
    if (seen()) return;
    const obs = new MutationObserver(() => { if (seen()) obs.disconnect(); });
    obs.observe(document.documentElement, { childList: true, subtree: true });
  };
  if (document.documentElement) start(); else document.addEventListener('readystatechange', start, { once: true });
})();
""".replace("MARKER_SELECTOR", json.dumps(MARKER))


def bundle() -> dict[str, Any]:
    files = [STATIC / "index.html", *sorted((STATIC / "assets").glob("*"))]
    rows = {}
    for path in files:
        data = path.read_bytes()
        rows[path.relative_to(STATIC).as_posix()] = {
            "bytes": len(data),
            "gzip": len(gzip.compress(data, compresslevel=9, mtime=0)),
        }
    return {
        "files": rows,
        "total_bytes": sum(r["bytes"] for r in rows.values()),
        "total_gzip": sum(r["gzip"] for r in rows.values()),
        "js_gzip": sum(r["gzip"] for n, r in rows.items() if n.endswith(".js")),
        "css_gzip": sum(r["gzip"] for n, r in rows.items() if n.endswith(".css")),
    }


def fill(home: Path, jobs: int) -> None:
    """``jobs`` succeeded FineTuneJobs, each with its Ready ModelVersion (nothing to reconcile)."""
    store = LocalStore(home)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for i in range(jobs):
        model = f"model-{i % 4}"
        version = f"{model}-v{i // 4 + 1}"
        done = {"type": "Succeeded", "status": "True", "reason": "Completed", "message": "done",
                "lastTransitionTime": now}  # fmt: skip
        job = store.create(
            {
                "apiVersion": API,
                "kind": "FineTuneJob",
                "metadata": {"name": f"job-{i}", "labels": {"modelgarden.dev/experiment": "bench"}},
                "spec": {
                    "baseModel": {"uri": "pvc://model-garden-artifacts/base/tiny-llama"},
                    "dataset": {"uri": "pvc://model-garden-artifacts/datasets/pets.jsonl"},
                    "hyperparameters": {"epochs": 1, "learningRate": f"{i + 1}e-4"},
                    "output": {"model": model},
                },
            }
        )
        store.patch(
            "FineTuneJob",
            job["metadata"]["name"],
            {
                "status": {
                    "conditions": [done],
                    "progress": {"step": 100, "totalSteps": 100, "loss": 1.0 + i / 100},
                    "carbon": {
                        "energyKwh": 0.01 * (i + 1),
                        "emissionsKg": 0.002 * (i + 1),
                        "country": "FRA",
                        "method": "estimated",
                    },  # fmt: skip
                    "startTime": now,
                    "completionTime": now,
                    "modelVersion": version,
                }
            },
        )
        store.create(
            {
                "apiVersion": API,
                "kind": "ModelVersion",
                "metadata": {"name": version},
                "spec": {
                    "model": model,
                    "version": i // 4 + 1,
                    "artifact": {
                        "uri": f"pvc://model-garden-artifacts/{model}/v{i // 4 + 1}",
                        "format": "merged",
                    },  # fmt: skip
                    "source": {"fineTuneJob": job["metadata"]["name"]},
                },
            }
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_readapi(home: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_garden.readapi", "--local", "--no-reconcile",
         "--home", str(home), "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "PYTHONUNBUFFERED": "1"}, stdout=log.open("w"), stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"read API exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v1/info", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"read API not up in 60 s:\n{log.read_text()[-3000:]}")


def render_times(url: str, runs: int, chromium: str) -> tuple[str, list[dict[str, float]]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        version = browser.version
        try:
            for _ in range(runs + 1):  # the first run warms the server and the OS caches
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(WATCH_MARKER)
                page = context.new_page()
                page.goto(f"{url}/#/", wait_until="load")
                page.wait_for_selector(MARKER, timeout=30_000)
                page.wait_for_function("window.__mgFirstContent !== undefined", timeout=30_000)
                timing = page.evaluate(
                    """() => {
                      const nav = performance.getEntriesByType('navigation')[0];
                      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                      return {
                        responseEnd: nav.responseEnd,
                        domContentLoaded: nav.domContentLoadedEventEnd,
                        load: nav.loadEventEnd,
                        firstContentfulPaint: fcp ? fcp.startTime : null,
                        firstContent: window.__mgFirstContent,
                      };
                    }"""
                )
                out.append(timing)
                context.close()
        finally:
            browser.close()
    return version, out[1:]


def median(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--jobs", type=int, default=20)
    args = parser.parse_args()
    chromium = os.environ.get("MODEL_GARDEN_CHROMIUM", "/usr/bin/chromium")
    figures: dict[str, Any] = {"bundle": bundle()}
    b = figures["bundle"]
    print(
        f"bundle: {b['total_gzip'] / 1024:.1f} KiB gzip ({b['total_bytes'] / 1024:.1f} KiB raw;"
        f" JS {b['js_gzip'] / 1024:.1f} KiB, CSS {b['css_gzip'] / 1024:.1f} KiB gzip)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "MODEL_GARDEN_HOME": str(work / "home"),
            "MODEL_GARDEN_CONFIG": str(work / "config.yaml"),
            "KUBECONFIG": str(work / "no-kubeconfig"),
        }
        fill(work / "home", args.jobs)
        proc, url = start_readapi(work / "home", env, work / "readapi.log")
        try:
            version, rows = render_times(url, args.runs, chromium)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
    keys = ("responseEnd", "domContentLoaded", "load", "firstContentfulPaint", "firstContent")
    figures["render_ms"] = {k: median(rows, k) for k in keys}
    figures["runs"] = len(rows)
    figures["chromium"] = version
    figures["store"] = {"jobs": args.jobs, "versions": args.jobs}
    r = figures["render_ms"]
    print(
        f"overview first render (median of {len(rows)}, Chromium {version}):"
        f" first content {r['firstContent']} ms, FCP {r['firstContentfulPaint']} ms,"
        f" DOMContentLoaded {r['domContentLoaded']} ms, load {r['load']} ms"
        f" — bundle {b['total_gzip'] / 1024:.1f} KiB gzip"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
