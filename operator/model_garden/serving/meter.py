"""The serving carbon meter: ``python -m model_garden.serving.meter --vllm-url URL --port 9400``.

Samples the pod's energy (energy.py) and vLLM's Prometheus counters every ``--interval`` seconds,
accounts them (accounting.py), persists the totals to ``--state-file``, and serves ``/metrics``
(Prometheus), ``/carbon`` (the ServingCarbon JSON the operator polls) and ``/health``. It is never
in the request path: if it stops, vLLM keeps serving; if vLLM stops, the meter keeps its totals.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from model_garden.carbon.grid import grid_intensity

from .accounting import Accountant, VllmSnapshot
from .energy import ENERGY_SOURCES, EnergySource, kepler_target, open_energy_source

log = logging.getLogger("model_garden.serving.meter")
PREFIX = "model_garden_serving"


def default_state_file(namespace: str, name: str) -> Path:
    """$MODEL_GARDEN_METER_STATE, else a file under the temp dir (mount an emptyDir there in pods)."""
    configured = os.environ.get("MODEL_GARDEN_METER_STATE")
    if configured:
        return Path(configured)
    return (
        Path(os.environ.get("TMPDIR", "/tmp")) / "model-garden" / f"meter-{namespace}-{name}.json"
    )


class MeterCollector(Collector):
    """Prometheus view of the accountant (read under the meter's lock)."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def collect(self) -> Iterator[Metric]:
        with self.meter.lock:
            acc = self.meter.accountant
            s = acc.state
            method = str(acc.method)
            base = ["namespace", "deployment"]
            ident = [self.meter.namespace, self.meter.deployment]
            energy = CounterMetricFamily(
                f"{PREFIX}_energy_joules",
                "Energy drawn by the serving pod since it was first deployed (J).",
                labels=[*base, "phase", "method"],
            )
            energy.add_metric([*ident, "active", method], s.active_energy_joules)
            energy.add_metric([*ident, "idle", method], s.idle_energy_joules)
            yield energy
            components = CounterMetricFamily(
                f"{PREFIX}_component_energy_joules",
                "Energy per component (gpu, cpu, ram) and how it was obtained (J).",
                labels=[*base, "component", "method"],
            )
            for name, joules in sorted(s.component_joules.items()):
                components.add_metric(
                    [*ident, name, str(acc.component_methods.get(name, "estimated"))], joules
                )
            yield components
            emissions = CounterMetricFamily(
                f"{PREFIX}_emissions_grams",
                "Emissions of the serving pod (g CO2e), at the grid intensity reported.",
                labels=[*base, "method", "country", "region"],
            )
            emissions.add_metric(
                [*ident, method, acc.country or "", acc.region or ""], s.emissions_grams
            )
            yield emissions
            tokens = CounterMetricFamily(
                f"{PREFIX}_tokens", "Tokens served (from vLLM's counters).", labels=[*base, "kind"]
            )
            tokens.add_metric([*ident, "prompt"], s.prompt_tokens)
            tokens.add_metric([*ident, "generation"], s.generation_tokens)
            yield tokens
            requests = CounterMetricFamily(
                f"{PREFIX}_requests", "Requests vLLM finished.", labels=base
            )
            requests.add_metric(ident, s.requests)
            yield requests
            per_token, per_1k, _ = acc.window_figures()
            window = f"{int(acc.window_s)}s"
            jpt = GaugeMetricFamily(
                f"{PREFIX}_joules_per_token",
                "Active energy per token over the sliding window (idle energy excluded).",
                labels=[*base, "window", "method"],
            )
            gpk = GaugeMetricFamily(
                f"{PREFIX}_grams_per_1k_tokens",
                "Emissions of active energy per 1000 tokens over the sliding window (g CO2e).",
                labels=[*base, "window", "method"],
            )
            if per_token is not None and per_1k is not None:
                jpt.add_metric([*ident, window, method], per_token)
                gpk.add_metric([*ident, window, method], per_1k)
            yield jpt
            yield gpk
            grid = GaugeMetricFamily(
                f"{PREFIX}_grid_intensity_grams_per_kwh",
                "Grid carbon intensity the emissions use (g CO2e per kWh).",
                labels=[*base, "country", "region", "source"],
            )
            grid.add_metric(
                [*ident, acc.country or "", acc.region or "", self.meter.intensity_source],
                acc.intensity,
            )
            yield grid
            up = GaugeMetricFamily(
                f"{PREFIX}_vllm_up", "1 when the last scrape of vLLM succeeded.", labels=base
            )
            up.add_metric(ident, 1.0 if acc.vllm_up else 0.0)
            yield up
            restarts = CounterMetricFamily(
                f"{PREFIX}_vllm_restarts", "vLLM restarts the meter has seen.", labels=base
            )
            restarts.add_metric(ident, s.vllm_restarts)
            yield restarts
            yield from adapter_metrics(acc, base, ident, method)


def adapter_metrics(
    acc: Accountant, base: list[str], ident: list[str], method: str
) -> Iterator[Metric]:
    """Active figures per adapter (the base model under its served name) and of the ticks that
    mixed adapters, which vLLM does not let us split (accounting.py, adapter_carbon.py)."""
    s = acc.state
    labels = [*base, "adapter"]
    tokens = CounterMetricFamily(
        f"{PREFIX}_adapter_tokens",
        "Tokens of ticks in which vLLM listed only this adapter (or none: the base model).",
        labels=labels,
    )
    energy = CounterMetricFamily(
        f"{PREFIX}_adapter_energy_joules",
        "Active energy of those ticks (J).",
        labels=[*labels, "method"],
    )
    emissions = CounterMetricFamily(
        f"{PREFIX}_adapter_emissions_grams",
        "Emissions of those ticks (g CO2e).",
        labels=[*labels, "method"],
    )
    for name, totals in sorted(s.adapters.items()):
        tokens.add_metric([*ident, name], totals.tokens)
        energy.add_metric([*ident, name, method], totals.energy_joules)
        emissions.add_metric([*ident, name, method], totals.emissions_grams)
    yield tokens
    yield energy
    yield emissions
    shared = s.unattributed
    for suffix, value, help_text in (
        ("tokens", shared.tokens, "Tokens of ticks that mixed adapters (not split)."),
        ("energy_joules", shared.energy_joules, "Active energy of ticks that mixed adapters (J)."),
        ("emissions_grams", shared.emissions_grams, "Their emissions (g CO2e)."),
    ):
        family = CounterMetricFamily(f"{PREFIX}_unattributed_{suffix}", help_text, labels=base)
        family.add_metric(ident, value)
        yield family


class Meter:
    def __init__(
        self,
        vllm_url: str,
        source: EnergySource,
        accountant: Accountant,
        deployment: str = "",
        namespace: str = "",
        intensity_source: str = "",
    ) -> None:
        self.vllm_url = vllm_url.rstrip("/")
        self.source = source
        self.accountant = accountant
        self.deployment = deployment
        self.namespace = namespace
        self.intensity_source = intensity_source
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.client = httpx.Client(timeout=httpx.Timeout(3.0, connect=1.0))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(MeterCollector(self))

    def scrape(self) -> VllmSnapshot | None:
        try:
            response = self.client.get(f"{self.vllm_url}/metrics")
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return VllmSnapshot.from_page(response.text)

    def tick(self) -> None:
        reading = self.source.read()
        snapshot = self.scrape()
        with self.lock:
            acc = self.accountant
            acc.method = self.source.method(reading)
            acc.component_methods = {name: e.method for name, e in reading.items()}
            acc.component_sources = self.source.sources(reading)
            acc.tick({name: e.joules for name, e in reading.items()}, snapshot)
            acc.save()

    def run(self, interval: float) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception:  # a failed sample must not kill the meter; the next one retries
                log.exception("meter tick failed")
            next_at += interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))
        self.tick()  # account the last partial interval before exiting


def make_handler(meter: Meter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body = generate_latest(meter.registry)
                self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/carbon":
                with meter.lock:
                    doc = meter.accountant.carbon().model_dump_json(
                        by_alias=True, exclude_none=True
                    )
                self._send(200, doc.encode(), "application/json")
            elif path in ("/health", "/healthz"):
                self._send(200, b"ok\n", "text/plain")
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would drown the pod's log

    return Handler


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vllm-url", default="http://127.0.0.1:8000")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--state-file", type=Path, default=None)
    parser.add_argument("--interval", type=float, default=1.0, help="Seconds between samples.")
    parser.add_argument("--window", type=float, default=300.0, help="Sliding window, seconds.")
    parser.add_argument(
        "--history-interval",
        type=float,
        default=60.0,
        help="Seconds between lines of the history file beside the state file.",
    )
    parser.add_argument("--country", default="USA", help="ISO alpha-3 country of the grid.")
    parser.add_argument("--region", default=None)
    parser.add_argument(
        "--grid-overrides",
        type=json.loads,
        default=None,
        help="The cluster's intensities by region or country, JSON {key: g/kWh}: they win.",
    )
    parser.add_argument(
        "--pid", type=int, default=None, help="Account this process tree (default: the cgroup)."
    )
    parser.add_argument(
        "--energy-source",
        choices=ENERGY_SOURCES,
        default="auto",
        help="kepler: CPU and DRAM from Kepler's per-pod counters in --prometheus-url.",
    )
    parser.add_argument(
        "--prometheus-url", default=None, help="Prometheus holding Kepler's series."
    )
    parser.add_argument(
        "--pod-name", default=None, help="This pod, for Kepler (default: $POD_NAME, the hostname)."
    )
    parser.add_argument("--deployment", default="local")
    parser.add_argument("--namespace", default="default")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s meter %(levelname)s %(message)s")
    args = parse_args(argv)
    grid = grid_intensity(args.country, args.region, args.grid_overrides)
    state_file = args.state_file or default_state_file(args.namespace, args.deployment)
    accountant = Accountant.resume(
        state_file,
        intensity_g_per_kwh=grid.g_per_kwh,
        country=grid.country,
        region=grid.region,
        grid_source=grid.source,
        grid_time=grid.time,
        window_s=args.window,
        history_every_s=args.history_interval,
    )
    source = open_energy_source(
        args.energy_source,
        pid=args.pid,
        kepler_target=kepler_target(args.prometheus_url, args.namespace, args.pod_name),
    )
    meter = Meter(args.vllm_url, source, accountant, args.deployment, args.namespace, grid.source)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(meter))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="meter-http", daemon=True).start()

    def stop(signum: int, frame: FrameType | None) -> None:
        meter.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "metering %s every %ss on :%d, state %s, grid %s g/kWh (%s)",
        args.vllm_url,
        args.interval,
        args.port,
        state_file,
        grid.g_per_kwh,
        grid.source,
    )
    meter.run(args.interval)
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
