"""History from a real Prometheus (Debian's) scraping the real trainer progress server and the
real serving meter: ``query_range`` over the series they export."""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chart.prometheus import running_config
from model_garden.local.store import LocalStore
from model_garden.readapi import ReadApiSettings, create_app
from model_garden.readapi.local import LocalSource
from model_garden.serving.accounting import Accountant, MeterState
from model_garden.serving.energy import EstimatedHost
from model_garden.serving.meter import Meter, make_handler
from model_garden.training.progress import ProgressServer, ProgressTracker

pytestmark = pytest.mark.chart  # the CI job that has Prometheus (scripts/bootstrap.sh)


def test_job_and_deployment_history_from_prometheus(store: LocalStore, tmp_path: Path) -> None:
    tracker = ProgressTracker(total_steps=3)
    tracker.labels = {
        "job": "pets-a",
        "namespace": "default",
        "model": "pets",
        "country": "FRA",
        "region": "",
    }
    tracker.start_training()
    trainer = ProgressServer(tracker, 0, "127.0.0.1").start()
    state = MeterState(  # totals as the accountant keeps them: all of it spent serving
        energy_joules=7200.0,
        active_energy_joules=7200.0,
        emissions_grams=2.0,
        active_emissions_grams=2.0,
        prompt_tokens=300,
        generation_tokens=100,
    )
    meter = Meter(
        "http://127.0.0.1:9", EstimatedHost(lambda: (0.0, 0.0)), Accountant(3600.0, state=state),
        deployment="pets", namespace="default",
    )  # fmt: skip
    meter_http = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(meter))
    threading.Thread(target=meter_http.serve_forever, daemon=True).start()
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": name, "honor_labels": True, "static_configs": [{"targets": [target]}]}
            for name, target in (
                ("trainer", f"127.0.0.1:{trainer.port}"),
                ("meter", f"127.0.0.1:{meter_http.server_address[1]}"),
            )
        ],
    }
    try:
        with running_config(tmp_path, config) as prometheus:
            tracker.step_done(1, 0.5, 2.0, 1e-4, tokens=100)
            deadline = time.monotonic() + 30
            while not prometheus.query('model_garden_training_loss{job="pets-a"} == 2'):
                assert time.monotonic() < deadline, "Prometheus never scraped step 1"
                time.sleep(0.3)
            tracker.step_done(2, 1.0, 1.5, 1e-4, tokens=100)
            tracker.set_eval_loss(1.7)
            while not prometheus.query('model_garden_training_step{job="pets-a"} == 2'):
                assert time.monotonic() < deadline, "Prometheus never scraped step 2"
                time.sleep(0.3)
            while not prometheus.query('model_garden_serving_tokens_total{deployment="pets"}'):
                assert time.monotonic() < deadline, "Prometheus never scraped the meter"
                time.sleep(0.3)
            time.sleep(1.5)  # one more evaluation step past the last scrape
            settings = ReadApiSettings(static_dir=tmp_path / "none", prometheus_url=prometheus.url)
            with TestClient(create_app(LocalSource(store.home), settings)) as client:
                job = client.get("/api/v1/finetunejobs/default/pets-a/history").json()
                idep = client.get("/api/v1/inferencedeployments/default/pets/history").json()
    finally:
        trainer.stop()
        meter_http.shutdown()
    assert job["source"] == "prometheus"
    by_step = {p["step"]: p for p in job["points"]}
    assert by_step[1]["loss"] == 2.0 and by_step[2]["loss"] == 1.5
    assert by_step[2]["evalLoss"] == 1.7 and by_step[2]["learningRate"] == 1e-4
    assert idep["source"] == "prometheus" and idep["points"]
    last = idep["points"][-1]
    assert last["tokens"] == 400
    assert last["energyKwh"] == pytest.approx(7200 / 3.6e6)
    assert last["emissionsKg"] == pytest.approx(0.002)
