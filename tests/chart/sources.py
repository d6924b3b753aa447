"""The three metric sources a cluster's Prometheus scrapes, run here as local servers: the
operator's OperatorMetrics, a trainer's ProgressServer and the serving meter (a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from harness.envtest import free_port
from model_garden.api.contracts import TrainingConfig, TrainingState
from model_garden.operator.metrics import OperatorMetrics
from model_garden.training.progress import ProgressServer, ProgressTracker, training_labels

REPO = Path(__file__).resolve().parents[2]
TRAINING_CONFIG = TrainingConfig.model_validate(
    {
        "job": {"name": "tune", "namespace": "team-a", "uid": "u-1"},
        "spec": {
            "baseModel": {"hub": {"id": "org/base"}},
            "dataset": {"uri": "pvc://data/chat.jsonl"},
            "output": {"model": "chat"},
        },
        "runtime": {
            "baseModel": "org/base",
            "datasetPath": "/mnt/data/chat.jsonl",
            "outputDir": "/out",
            "checkpointDir": "/ckpt",
            "country": "FRA",
            "region": "ile-de-france",
        },
    }
)
"""The trainer's config as the operator writes it (its labels come from here)."""


@contextmanager
def answering(
    proc: subprocess.Popen[Any], url: str, what: str, output: Callable[[], str]
) -> Iterator[None]:
    """Hold ``proc`` (a server the test started) until ``url`` answers 200, then yield; stop it
    on the way out (TERM, KILL after 10 s). A server that exits first fails with ``output()``."""
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}:\n{output()}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer {url} in 30 s")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _condition(kind: str, status: str) -> dict[str, str]:
    return {"type": kind, "status": status, "reason": "Test", "message": ""}


@contextmanager
def operator_metrics() -> Iterator[int]:
    """The operator's metrics, fed statuses the way its handlers feed them: a failed job, a job
    stopped by its carbon budget, a deployment not Ready, a ModelVersion with lifetime emissions, reconciliations and an error."""
    metrics = OperatorMetrics()
    metrics.observe_statuses(
        "FineTuneJob",
        [
            {
                "metadata": {"namespace": "team-a", "name": "tune"},
                "status": {
                    "conditions": [_condition("Failed", "True")],
                    "carbon": {"energyKwh": 0.5, "emissionsKg": 0.02},
                },
            },
            {
                "metadata": {"namespace": "team-a", "name": "over-budget"},
                "status": {
                    "conditions": [
                        {**_condition("Failed", "True"), "reason": "CarbonBudgetExceeded"},
                        {**_condition("Running", "False"), "reason": "CarbonBudgetExceeded"},
                    ],
                    "carbon": {"energyKwh": 2.0, "emissionsKg": 0.11},
                },
            },
        ],
    )
    metrics.observe_statuses(
        "InferenceDeployment",
        [
            {
                "metadata": {"namespace": "team-a", "name": "chat"},
                "status": {
                    "conditions": [_condition("Ready", "False")],
                    "carbon": {"energyKwh": 0.1, "emissionsKg": 0.004},
                },
            }
        ],
    )
    metrics.observe_statuses(
        "ModelVersion",
        [
            {
                "metadata": {"namespace": "team-a", "name": "chat-v1"},
                "spec": {"model": "chat"},
                "status": {
                    "conditions": [_condition("Ready", "True")],
                    "lifetimeEmissionsKg": 0.03,
                },
            }
        ],
    )
    for kind in ("FineTuneJob", "ModelVersion", "InferenceDeployment"):
        metrics.reconciliations.labels(kind).inc(3)
    metrics.errors.labels("FineTuneJob").inc()
    port = free_port()
    metrics.serve(port, addr="127.0.0.1")
    try:
        yield port
    finally:
        metrics.stop()


@contextmanager
def trainer(stop: threading.Event) -> Iterator[int]:
    """A trainer's /metrics, advancing a step (tokens, energy, emissions) every 0.2 s."""
    tracker = ProgressTracker(total_steps=10_000)
    tracker.labels = training_labels(TRAINING_CONFIG)  # what a trainer pod's run sets
    tracker.start_training()
    tracker.set_state(TrainingState.TRAINING)
    server = ProgressServer(tracker, 0, host="127.0.0.1").start()

    def advance() -> None:
        step = 0
        while not stop.wait(0.2):
            step += 1
            tracker.step_done(step, step / 100, 2.0 - step / 10_000, 2e-4, tokens=512)
            tracker.set_carbon(step * 1e-5, step * 4e-7, "estimated")
            if step % 5 == 0:
                tracker.set_eval_loss(1.9)

    thread = threading.Thread(target=advance, daemon=True)
    thread.start()
    try:
        yield server.port
    finally:
        stop.set()
        thread.join(5)
        server.stop()


class _VllmCounters:
    """vLLM's /metrics counters (the three series the meter reads), growing with each scrape.
    Stands in for vLLM only: the meter reading it is the real program."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def text(self) -> str:
        with self.lock:
            self.calls += 1
            n = self.calls
        labels = '{model_name="chat"}'
        return (
            f"vllm:prompt_tokens_total{labels} {n * 40}.0\n"
            f"vllm:generation_tokens_total{labels} {n * 120}.0\n"
            f'vllm:request_success_total{{model_name="chat",finished_reason="stop"}} {n}.0\n'
            f"vllm:num_requests_running{labels} 1.0\n"
        )


@contextmanager
def meter(tmp: Path) -> Iterator[int]:
    """`python -m model_garden.serving.meter` against a growing vLLM counter page."""
    counters = _VllmCounters()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = counters.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    vllm = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=vllm.serve_forever, daemon=True).start()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "operator")}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "model_garden.serving.meter",
            "--vllm-url", f"http://127.0.0.1:{vllm.server_address[1]}",
            "--host", "127.0.0.1", "--port", str(port),
            "--interval", "0.5", "--window", "60",
            "--energy-source", "estimate", "--pid", str(os.getpid()),
            "--country", "FRA", "--deployment", "chat", "--namespace", "team-a",
            "--state-file", str(tmp / "meter.json"),
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip

    def output() -> str:
        return proc.stdout.read().decode() if proc.stdout else ""

    try:
        with answering(proc, f"http://127.0.0.1:{port}/health", "the meter", output):
            yield port
    finally:
        vllm.shutdown()
        vllm.server_close()
