"""Progress maths, Prometheus text and the HTTP endpoints (in-process)."""

from __future__ import annotations

import httpx

from model_garden.api.contracts import TrainingConfig, TrainingProgress, TrainingState
from model_garden.training.progress import (
    ProgressServer,
    ProgressTracker,
    eta,
    prometheus_text,
    training_labels,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_and_throughput_from_steps_done() -> None:
    assert eta(0, 10.0, 5) is None
    assert eta(2, 10.0, 8) == 40.0
    clock = Clock()
    t = ProgressTracker(total_steps=10, start_step=4, clock=clock)
    t.start_training()
    clock.now += 2.0
    p = t.step_done(5, 0.5, 1.5, 1e-3, tokens=1000)
    assert p.tokens_per_second == 500.0 and p.eta_seconds == 10.0  # 2 s/step, 5 left
    assert t.total_tokens == 1000


def test_prometheus_text_has_gauges_and_cumulative_counters() -> None:
    p = TrainingProgress(step=3, total_steps=9, loss=1.25, energy_kwh=0.001, emissions_kg=0.0005)
    text = prometheus_text(p, {"job": "a", "namespace": "ns"}, tokens_total=42)
    assert "# TYPE model_garden_training_energy_joules_total counter" in text
    assert (
        'model_garden_training_energy_joules_total{job="a",method="estimated",namespace="ns"} 3600.0'
        in text
    )
    assert (
        'model_garden_training_emissions_grams_total{job="a",method="estimated",namespace="ns"} 0.5'
        in text
    )
    assert 'model_garden_training_step{job="a",namespace="ns"} 3.0' in text
    assert "model_garden_training_tokens_total" in text and "eval_loss" not in text


def test_server_answers_progress_and_metrics() -> None:
    tracker = ProgressTracker(total_steps=5)
    tracker.labels = {"job": "j"}
    tracker.set_state(TrainingState.TRAINING)
    tracker.set_carbon(0.002, 0.001, "estimated")
    server = ProgressServer(tracker, 0, host="127.0.0.1").start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        got = TrainingProgress.model_validate(httpx.get(f"{base}/progress").json())
        assert got.total_steps == 5 and got.state == "Training" and got.energy_kwh == 0.002
        metrics = httpx.get(f"{base}/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "model_garden_training_emissions_grams_total" in metrics.text
        assert httpx.get(f"{base}/nope").status_code == 404
    finally:
        server.stop()


def _config(**carbon: str) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "job": {"name": "tune", "namespace": "team", "uid": "u-1"},
            "spec": {
                "baseModel": {"hub": {"id": "org/base"}},
                "dataset": {"uri": "file:///data/chat.jsonl"},
                "output": {"model": "chat"},
            },
            "runtime": {
                "baseModel": "org/base",
                "datasetPath": "/data/chat.jsonl",
                "outputDir": "/out",
                "checkpointDir": "/ckpt",
                **carbon,
            },
        }
    )


def test_every_series_carries_job_namespace_model_and_region_of_the_config() -> None:
    """The dashboard's "Training emissions by model and region" sums by these labels."""
    labels = training_labels(_config(country="FRA", region="ile-de-france"))
    assert labels == {
        "job": "tune",
        "namespace": "team",
        "model": "chat",
        "country": "FRA",
        "region": "ile-de-france",
    }
    p = TrainingProgress(step=3, total_steps=9, loss=1.2, energy_kwh=0.001, emissions_kg=0.0005)
    samples = [
        line
        for line in prometheus_text(p, labels, tokens_total=42).splitlines()
        if not line.startswith("#")
    ]
    assert len(samples) >= 8
    for line in samples:
        assert 'model="chat"' in line and 'region="ile-de-france"' in line, line
        assert 'job="tune"' in line and 'namespace="team"' in line, line
    # no output.model: the job's name (the ModelVersion's model); no region: "" (the country's)
    cfg = _config()
    cfg.spec.output.model = None
    assert training_labels(cfg) == {
        "job": "tune",
        "namespace": "team",
        "model": "tune",
        "country": "USA",
        "region": "",
    }


def test_the_trainer_run_serves_its_series_with_these_labels() -> None:
    """The wiring: a run's tracker (training.session.RunContext) is labelled from its config."""
    from model_garden.training.session import RunContext

    cfg = _config(region="california")
    assert RunContext.begin(cfg).tracker.labels == training_labels(cfg)
