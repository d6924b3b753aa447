"""Kepler's per-pod energy read back from a real Prometheus (Debian's) holding recorded series.

A few minutes of ``kepler_pod_cpu_joules_total`` (Kepler >= 0.10) and of the 0.7
``kepler_container_*_joules_total`` counters, as Kepler exports them, are written as OpenMetrics,
backfilled with ``promtool tsdb create-blocks-from openmetrics``, and served by Prometheus: the
readers must return exactly the increase recorded, and keep the estimate, with a warning, when
Prometheus is down.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chart.prometheus import Prometheus, promtool, running_config
from chart.render import CHART, helm
from chart.test_chart_operator_env import _operator_env, _settings
from harness.envtest import free_port
from model_garden.api import FineTuneJob
from model_garden.carbon import kepler
from model_garden.operator.finetunejob.kepler import into_result, trainer_energy
from model_garden.operator.settings import OperatorSettings
from model_garden.serving.energy import KeplerPod, KeplerTarget, open_energy_source
from unit.operator.factories import ftj, job, result

pytestmark = pytest.mark.chart  # the CI job that has Prometheus (scripts/bootstrap.sh)

BASE = math.floor(time.time() / 60) * 60 - 900  # a quarter of an hour ago, on a minute
NODE = {"node_name": "node-1"}
PKG = "kepler:kepler_pod_cpu_joules_total{zone=package}"
DRAM = "kepler:kepler_pod_cpu_joules_total{zone=dram}"


def pod(name: str, namespace: str = "team", state: str = "running") -> dict[str, str]:
    return {"pod_id": f"uid-{name}", "pod_name": name, "pod_namespace": namespace, "state": state}


Series = tuple[dict[str, str], list[tuple[int, float]]]
CURRENT: list[Series] = [
    # the first attempt: Kepler restarted at +60 (its counter went back to 5), and when the
    # pod ended its counter carried on under state="terminated"
    (
        {**pod("tune-train-x7k2p"), "zone": "package"},
        [(0, 12.5), (15, 30.0), (30, 52.5), (45, 70.0), (60, 5.0), (75, 20.0), (90, 41.0),
         (105, 60.0), (120, 77.5)],
    ),  # fmt: skip
    ({**pod("tune-train-x7k2p", state="terminated"), "zone": "package"}, [(135, 77.5), (150, 77.5)]),
    ({**pod("tune-train-x7k2p"), "zone": "dram"}, [(0, 1.0), (30, 3.0), (60, 5.5), (120, 10.25)]),
    ({**pod("tune-train-x7k2p", state="terminated"), "zone": "dram"}, [(135, 10.25)]),
    ({**pod("tune-train-x7k2p"), "zone": "core"}, [(0, 11.0), (120, 70.0)]),  # inside package
    # the resumed attempt: the same Job name, a new pod
    ({**pod("tune-train-b9c3d"), "zone": "package"}, [(200, 3.0), (230, 33.0), (260, 63.0), (290, 90.5)]),
    ({**pod("tune-train-b9c3d"), "zone": "dram"}, [(200, 0.5), (290, 6.5)]),
    # neighbours that must not count: another pod, the same name in another namespace
    ({**pod("other-train-abcde"), "zone": "package"}, [(0, 1.0), (290, 500.0)]),
    ({**pod("tune-train-x7k2p", namespace="else"), "zone": "package"}, [(0, 1.0), (290, 700.0)]),
    # a serving pod the meter follows
    ({**pod("chat-server-k4m2n"), "zone": "package"}, [(0, 100.0), (60, 160.0), (120, 250.0)]),
    ({**pod("chat-server-k4m2n"), "zone": "dram"}, [(0, 10.0), (60, 16.0), (120, 25.0)]),
    # a serving pod whose counters reach the present (BASE + 900 is at most a minute ago)
    ({**pod("chat-server-live"), "zone": "package"}, [(780, 400.0), (840, 460.0), (900, 520.0)]),
    ({**pod("chat-server-live"), "zone": "dram"}, [(780, 40.0), (900, 52.0)]),
]  # fmt: skip
TRAINER_CPU_J = 70.0 + (5.0 + 72.5) + 90.5  # from zero; Kepler's restart; the second pod
TRAINER_RAM_J = 10.25 + 6.5


def legacy(metric: str, container: str, mode: str) -> dict[str, str]:
    return {
        "__name__": metric,
        "pod_name": "web-q2w3e",
        "container_namespace": "old",
        "container_name": container,
        "container_id": f"id-{container}",
        "mode": mode,
    }


PACKAGE_07 = "kepler_container_package_joules_total"
LEGACY: list[Series] = [
    (legacy(PACKAGE_07, "vllm", "dynamic"), [(0, 4.0), (60, 64.0), (120, 124.0)]),
    (legacy(PACKAGE_07, "vllm", "idle"), [(0, 1.0), (60, 11.0), (120, 21.0)]),
    (legacy(PACKAGE_07, "meter", "dynamic"), [(0, 0.5), (120, 2.5)]),
    (legacy("kepler_container_dram_joules_total", "vllm", "dynamic"), [(0, 0.25), (120, 8.25)]),
    # package + dram + "other" + GPU: not a component's figure
    (legacy("kepler_container_joules_total", "vllm", "dynamic"), [(0, 9.0), (120, 999.0)]),
]
LEGACY_CPU_J = 124.0 + 21.0 + 2.5  # its pod began inside the range: from zero
LEGACY_RAM_J = 8.25


def openmetrics(current: list[Series], legacy_series: list[Series]) -> str:
    lines = ["# TYPE kepler_pod_cpu_joules counter"]
    for labels, samples in current:
        text = ",".join(f'{k}="{v}"' for k, v in {**labels, **NODE}.items())
        lines += [f"kepler_pod_cpu_joules_total{{{text}}} {v} {BASE + t}" for t, v in samples]
    by_metric: dict[str, list[Series]] = {}
    for labels, samples in legacy_series:
        by_metric.setdefault(labels["__name__"], []).append((labels, samples))
    for name, family in sorted(by_metric.items()):
        lines.append(f"# TYPE {name.removesuffix('_total')} counter")
        for labels, samples in family:
            text = ",".join(f'{k}="{v}"' for k, v in labels.items() if k != "__name__")
            lines += [f"{name}{{{text}}} {v} {BASE + t}" for t, v in samples]
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    work = tmp_path_factory.mktemp("kepler-prometheus")
    recorded = work / "kepler.om"
    recorded.write_text(openmetrics(CURRENT, LEGACY))
    made = promtool("tsdb", "create-blocks-from", "openmetrics", str(recorded), str(work / "data"))
    assert made.returncode == 0, made.stdout + made.stderr
    with running_config(work, {"global": {"scrape_interval": "15s"}}) as server:
        yield server


def test_the_recording_is_what_prometheus_serves(prometheus: Prometheus) -> None:
    names = prometheus.names()
    assert {"kepler_pod_cpu_joules_total", "kepler_container_package_joules_total"} <= names


def test_a_trainers_pods_over_the_jobs_life_are_the_increase_recorded(
    prometheus: Prometheus,
) -> None:
    energy = kepler.pod_energy(
        prometheus.url, "team", kepler.job_pods("tune-train"), BASE - 60, BASE + 400
    )
    assert energy.scheme == "kepler>=0.10"
    assert energy.joules == {
        "cpu": pytest.approx(TRAINER_CPU_J, abs=1e-9),
        "ram": pytest.approx(TRAINER_RAM_J, abs=1e-9),
    }
    assert energy.sources == {"cpu": PKG, "ram": DRAM}


def test_kepler_07_names_are_read_where_the_current_ones_are_absent(
    prometheus: Prometheus,
) -> None:
    energy = kepler.pod_energy(
        prometheus.url, "old", kepler.exact_pod("web-q2w3e"), BASE - 60, BASE + 400
    )
    assert energy.scheme == "kepler 0.7"
    assert energy.joules == {"cpu": pytest.approx(LEGACY_CPU_J), "ram": pytest.approx(LEGACY_RAM_J)}
    assert energy.sources["cpu"] == "kepler:kepler_container_package_joules_total"


def test_the_operator_puts_keplers_figures_in_the_finished_jobs_report(
    prometheus: Prometheus,
) -> None:
    body = ftj(status={})
    body["metadata"]["creationTimestamp"] = _iso(BASE - 60)
    settings = OperatorSettings(carbon_kepler_prometheus_url=prometheus.url)
    now = datetime.fromtimestamp(BASE + 400, UTC)
    energy = trainer_energy(
        settings, FineTuneJob.model_validate(body), job(finished="Complete"), now
    )
    assert energy is not None
    trained = result(
        carbon={"energyKwh": 1.0, "cpuEnergyKwh": 0.6, "ramEnergyKwh": 0.4, "emissionsKg": 0.05,
                "gridIntensityGPerKwh": 50.0, "country": "FRA", "method": "estimated",
                "componentMethods": {"cpu": "estimated", "ram": "estimated"}},
    )  # fmt: skip
    carbon = into_result(trained, energy).carbon
    kwh = (TRAINER_CPU_J + TRAINER_RAM_J) / 3.6e6
    assert carbon.energy_kwh == pytest.approx(kwh)
    assert carbon.emissions_kg == pytest.approx(kwh * 50.0 / 1000)
    assert carbon.method == "measured"
    assert carbon.component_sources == {"cpu": PKG, "ram": DRAM}


def test_the_meter_follows_its_pods_counters(prometheus: Prometheus) -> None:
    at = [BASE + 0.0]

    def query(when: float) -> kepler.PodEnergy:
        return kepler.pod_counters(prometheus.url, "team", "chat-server-k4m2n", when)

    source = KeplerPod(query, refresh_s=0.0, now=lambda: at[0])
    at[0] = BASE + 60.0
    reading = source.read()
    assert reading["cpu"].joules == pytest.approx(60.0) and reading["ram"].joules == 6.0
    at[0] = BASE + 120.0
    reading = source.read()
    assert reading["cpu"].joules == pytest.approx(150.0) and reading["ram"].joules == 15.0
    assert reading["cpu"].method == "measured" and reading["cpu"].source == PKG


def test_the_meter_with_kepler_measures_its_cpu_and_dram_there(
    prometheus: Prometheus, tmp_path: Path
) -> None:
    source = open_energy_source(
        "kepler",
        pid=None,
        kepler_target=KeplerTarget(prometheus.url, "team", "chat-server-live"),
        rapl_root=tmp_path / "no-powercap",
        gpu=lambda: (None, "no GPU here"),
    )
    reading = source.read()
    assert source.sources(reading) == {"cpu": PKG, "ram": DRAM}
    assert reading["cpu"].joules == 0.0  # the counters when the meter started are its zero
    assert source.method(reading) == "measured"


def test_with_prometheus_down_the_estimate_stays_with_a_warning(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING):
        source = open_energy_source(
            "kepler",
            pid=None,
            kepler_target=KeplerTarget(down, "team", "chat-server-k4m2n", timeout_s=2),
            rapl_root=tmp_path / "no-powercap",
            gpu=lambda: (None, "no GPU here"),
        )
    reading = source.read()
    assert reading["cpu"].method == "estimated" and reading["ram"].method == "estimated"
    assert f"kepler unavailable: Prometheus at {down} did not answer" in reading["ram"].source
    assert any("Kepler unavailable, falling back" in r.getMessage() for r in caplog.records)
    body = ftj(status={})
    settings = OperatorSettings(carbon_kepler_prometheus_url=down, carbon_kepler_timeout_seconds=2)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        energy = trainer_energy(
            settings, FineTuneJob.model_validate(body), job(finished="Complete"), datetime.now(UTC)
        )
    assert energy is None
    assert any("keeping the trainer's CPU/RAM figures" in r.getMessage() for r in caplog.records)


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def test_the_charts_kepler_url_reaches_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    off = _settings(_operator_env(), monkeypatch)
    assert off.carbon_kepler_prometheus_url is None  # default: no Kepler, no query
    url = "http://prometheus.monitoring:9090"
    env = _operator_env(
        "--set", f"carbon.kepler.prometheusUrl={url}", "--set", "carbon.kepler.timeoutSeconds=3"
    )
    settings = _settings(env, monkeypatch)
    assert settings.carbon_kepler_prometheus_url == url
    assert settings.carbon_kepler_timeout_seconds == 3
    refused = helm("template", "mg", str(CHART), "--set", "carbon.kepler.prometheusUrl=prom:9090")
    assert refused.returncode != 0 and "prometheusUrl" in refused.stderr
