"""Live progress: ``/progress`` (TrainingProgress JSON) and ``/metrics`` (Prometheus text).

The operator polls these while the run lasts. Counters are cumulative over the whole job, across
restarts (a resumed run starts from the checkpoint's totals), in base units: joules, grams.
Every series carries the run's constant labels (:func:`training_labels`): job, namespace,
model, country and region, so dashboards can split training emissions by model and region as
the meter's series do for serving.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from model_garden.api.contracts import TrainingConfig, TrainingProgress, TrainingState
from model_garden.carbon.grid import JOULES_PER_KWH

PREFIX = "model_garden_training"


def training_labels(config: TrainingConfig) -> dict[str, str]:
    """The constant labels of a run's series, from its TrainingConfig.

    ``model`` is the model the run produces (``spec.output.model``, default: the job's name, as
    the operator names the ModelVersion); ``country``/``region`` are the grid the operator
    resolved for the pod (spec.carbon, else the cluster default; ``region`` "" when none),
    the same label names as the serving meter's.
    """
    return {
        "job": config.job.name,
        "namespace": config.job.namespace,
        "model": config.spec.output.model or config.job.name,
        "country": config.runtime.country,
        "region": config.runtime.region or "",
    }


class ProgressTracker:
    """Thread-safe progress of one run, with throughput and ETA over the steps run so far."""

    def __init__(self, total_steps: int, start_step: int = 0, clock: Any = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.progress = TrainingProgress(total_steps=total_steps, step=start_step)
        self._start_step = start_step
        self._started: float | None = None
        self._tokens = 0
        self.total_tokens = 0
        self.labels: dict[str, str] = {}
        self.history: Path | None = None
        """history.jsonl beside the outputs: one line per step (and per evaluation), read by the
        read API's loss curves when no Prometheus keeps the series."""

    def resume_at(self, total_steps: int, step: int, tokens: int) -> None:
        """Start counting from a checkpoint: throughput and ETA cover this process's steps."""
        with self._lock:
            self.progress.total_steps, self.progress.step = total_steps, step
            self._start_step, self.total_tokens = step, tokens

    def set_state(self, state: TrainingState) -> None:
        with self._lock:
            self.progress.state = state

    def start_training(self) -> None:
        with self._lock:
            self._started = self._clock()
            self.progress.state = TrainingState.TRAINING

    def step_done(
        self, step: int, epoch: float, loss: float, lr: float, tokens: int
    ) -> TrainingProgress:
        with self._lock:
            now = self._clock()
            self._tokens += tokens
            self.total_tokens += tokens
            p = self.progress
            p.step, p.epoch, p.loss, p.learning_rate = step, epoch, loss, lr
            if self._started is not None:
                elapsed = max(now - self._started, 1e-9)
                p.tokens_per_second = self._tokens / elapsed
                p.eta_seconds = eta(step - self._start_step, elapsed, p.total_steps - step)
            self._append_history(evaluated=False)
            return p.model_copy()

    def set_eval_loss(self, value: float) -> None:
        with self._lock:
            self.progress.eval_loss = value
            self._append_history(evaluated=True)

    def _append_history(self, evaluated: bool) -> None:
        """One line for the step just logged (a second line for a step replaces the first).
        ``evalLoss`` only on the line of an evaluation: the latest one repeated on every step
        would draw a flat eval-loss curve between evaluations."""
        if self.history is None:
            return
        p = self.progress
        line = {
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "step": p.step,
            "epoch": p.epoch,
            "loss": p.loss,
            "evalLoss": p.eval_loss if evaluated else None,
            "learningRate": p.learning_rate,
            "tokensPerSecond": p.tokens_per_second,
        }
        try:
            with self.history.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(line) + "\n")
        except OSError:  # history is a convenience: a full disk must not stop training
            self.history = None

    def set_carbon(self, energy_kwh: float, emissions_kg: float, method: str) -> None:
        with self._lock:
            self.progress.energy_kwh = energy_kwh
            self.progress.emissions_kg = emissions_kg
            self.progress.carbon_method = method  # type: ignore[assignment]

    def snapshot(self) -> TrainingProgress:
        with self._lock:
            return self.progress.model_copy()


def eta(steps_done: int, elapsed: float, steps_left: int) -> float | None:
    """Seconds left at the average step time so far (None before the first step)."""
    if steps_done <= 0:
        return None
    return max(0.0, elapsed / steps_done * max(steps_left, 0))


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus_text(p: TrainingProgress, labels: dict[str, str], tokens_total: int) -> str:
    """Prometheus exposition (text format 0.0.4) of one progress snapshot."""
    lab = _labels(labels)
    carbon_lab = _labels({**labels, "method": str(p.carbon_method)})
    rows: list[tuple[str, str, str, float | None, str]] = [
        ("step", "gauge", "Optimizer steps done.", p.step, lab),
        ("total_steps", "gauge", "Optimizer steps planned.", p.total_steps, lab),
        ("epoch", "gauge", "Epochs done (fractional).", p.epoch, lab),
        ("loss", "gauge", "Training loss of the last step.", p.loss, lab),
        ("eval_loss", "gauge", "Last evaluation loss.", p.eval_loss, lab),
        ("learning_rate", "gauge", "Current learning rate.", p.learning_rate, lab),
        (
            "tokens_per_second",
            "gauge",
            "Real (non-pad) tokens per second.",
            p.tokens_per_second,
            lab,
        ),
        ("eta_seconds", "gauge", "Estimated seconds to the last step.", p.eta_seconds, lab),
        ("tokens_total", "counter", "Real tokens trained on.", float(tokens_total), lab),
        (
            "energy_joules_total",
            "counter",
            "Energy used by the run (cumulative, across restarts).",
            p.energy_kwh * JOULES_PER_KWH,
            carbon_lab,
        ),
        (
            "emissions_grams_total",
            "counter",
            "CO2e emitted by the run (cumulative, across restarts).",
            p.emissions_kg * 1000.0,
            carbon_lab,
        ),
    ]
    out = []
    for name, kind, help_text, value, row_labels in rows:
        if value is None:
            continue
        full = f"{PREFIX}_{name}"
        out.append(f"# HELP {full} {help_text}")
        out.append(f"# TYPE {full} {kind}")
        out.append(f"{full}{row_labels} {float(value)!r}")
    state_lab = _labels({**labels, "state": str(p.state)})
    out.append(f"# HELP {PREFIX}_info The run's state.")
    out.append(f"# TYPE {PREFIX}_info gauge")
    out.append(f"{PREFIX}_info{state_lab} 1.0")
    return "\n".join(out) + "\n"


class ProgressServer:
    """A tiny threaded HTTP server in the trainer process (port 0 picks a free one)."""

    def __init__(self, tracker: ProgressTracker, port: int, host: str = "0.0.0.0") -> None:
        tracker_ref = tracker

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                snap = tracker_ref.snapshot()
                if path == "/progress":
                    body = snap.model_dump_json(by_alias=True).encode()
                    ctype = "application/json"
                elif path == "/metrics":
                    body = prometheus_text(
                        snap, tracker_ref.labels, tracker_ref.total_tokens
                    ).encode()
                    ctype = "text/plain; version=0.0.4; charset=utf-8"
                elif path in ("/healthz", "/readyz"):
                    body, ctype = b'{"ok": true}', "application/json"
                else:
                    body = json.dumps({"error": f"no route {path}"}).encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> ProgressServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
