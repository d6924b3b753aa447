"""A stand-in for ``python -m model_garden.training`` in CLI unit tests (no torch needed).

It reads the TrainingConfig as the real trainer does, serves ``/progress`` on the config's port
while it "trains", writes a merged artifact (config.json + weights) into the output dir and a
TrainingResult to the termination-message path, like the real one. ``FAKE_TRAINER_FAIL=1``
makes it fail with a DatasetError (exit 3); ``FAKE_TRAINER_SECONDS`` sets how long it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from model_garden.api.contracts import TrainingConfig, TrainingResult, read_document
from model_garden.api.digest import artifact_digest

STEPS = 4


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    config = read_document(TrainingConfig, parser.parse_args().config)
    rt = config.runtime
    seconds = float(os.environ.get("FAKE_TRAINER_SECONDS", "1.5"))
    state = {"step": 0}
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())

    class Progress(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps(
                {
                    "state": "Training",
                    "step": state["step"],
                    "totalSteps": STEPS,
                    "loss": 2.0 - 0.1 * state["step"],
                    "energyKwh": 1e-6 * state["step"],
                    "emissionsKg": 5e-8 * state["step"],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", rt.progress_port), Progress)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for step in range(1, STEPS + 1):
        if stopped.wait(seconds / STEPS):
            print("terminated", flush=True)
            return 143
        state["step"] = step
        print(f"step {step}", flush=True)
    server.shutdown()
    if os.environ.get("FAKE_TRAINER_FAIL"):
        result = TrainingResult.model_validate(
            {"outcome": "Failed", "reason": "DatasetError", "message": "line 3: no text field"}
        )
        Path(rt.termination_message_path).write_text(result.to_termination_message())
        return 3
    merged = Path(rt.output_dir) / "merged"
    merged.mkdir(parents=True, exist_ok=True)
    (merged / "config.json").write_text('{"model_type": "llama"}')
    (merged / "model.safetensors").write_bytes(b"weights" * 100)
    found = artifact_digest(merged)
    result = TrainingResult.model_validate(
        {
            "outcome": "Succeeded",
            "backend": "transformers",
            "method": "full",
            "metrics": {
                "trainLoss": 1.61,
                "evalLoss": 1.52,
                "initialEvalLoss": 6.13,
                "steps": STEPS,
                "epochs": 0.5,
            },
            "carbon": {"energyKwh": 4e-6, "emissionsKg": 2e-7, "country": rt.country},
            "artifacts": [
                {
                    "kind": "full",
                    "path": str(merged),
                    "uri": f"{rt.artifact_uri}/merged",
                    "sizeBytes": found.size_bytes,
                    "digest": found.digest,
                }
            ],
        }
    )
    Path(rt.termination_message_path).write_text(result.to_termination_message())
    return 0


if __name__ == "__main__":
    sys.exit(main())
