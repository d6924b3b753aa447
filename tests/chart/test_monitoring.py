"""The chart's dashboard and rules against what our programs really export: a real Prometheus
scrapes the operator's, a trainer's and the serving meter's /metrics (local processes), loads
the chart's recording and alerting rules, and every query of the dashboard and the rules must
name scraped or recorded metrics and return data; promtool checks and unit-tests the rules."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .prometheus import Prometheus, promtool, running
from .promql import metric_names, name_regexes
from .render import CHART, VALUE_SETS, by_kind, render
from .sources import meter, operator_metrics, trainer

pytestmark = pytest.mark.chart

HERE = Path(__file__).resolve().parent
DEFAULT = next(vs for vs in VALUE_SETS if vs.name == "default")


def rule_groups() -> dict[str, Any]:
    (rule,) = by_kind(render(DEFAULT), "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def dashboard() -> dict[str, Any]:
    return dict(json.loads((CHART / "dashboards" / "model-garden.json").read_text()))


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def variable_selectors() -> list[str]:
    """The series selectors of the dashboard's label_values() variables."""
    out = []
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", query)
            assert match, query
            out.append(match.group(1))
    return out


def rule_exprs(groups: dict[str, Any]) -> list[str]:
    return [r["expr"] for g in groups["groups"] for r in g["rules"]]


def recorded(groups: dict[str, Any]) -> set[str]:
    return {r["record"] for g in groups["groups"] for r in g["rules"] if "record" in r}


def for_prometheus(expr: str) -> str:
    """A dashboard query as Grafana sends it: variables replaced."""
    return expr.replace("$__rate_interval", "15s").replace('=~"$namespace"', '=~".*"')


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "model-garden.rules.yaml"
    path.write_text(yaml.safe_dump(rule_groups(), sort_keys=False))
    return path


def test_promtool_check_rules(rules_file: Path) -> None:
    proc = promtool("check", "rules", str(rules_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_promtool_unit_tests_of_the_alerts(rules_file: Path) -> None:
    """tests/chart/alerts_test.yaml: each alert fires on its condition and not before."""
    shutil.copy(HERE / "alerts_test.yaml", rules_file.parent / "alerts_test.yaml")
    groups = rule_groups()
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (rules_file.parent / "model-garden.rules.alerts-only.yaml").write_text(yaml.safe_dump(groups))
    proc = promtool("test", "rules", "alerts_test.yaml", cwd=rules_file.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alerts_follow_the_conventions() -> None:
    for group in rule_groups()["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            assert re.fullmatch(r"ModelGarden[A-Z][A-Za-z]+", rule["alert"]), rule["alert"]
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
            assert rule["annotations"]["runbook_url"].startswith("https://")
    alerts = {r["alert"] for g in rule_groups()["groups"] for r in g["rules"] if "alert" in r}
    assert {
        "ModelGardenFineTuneJobFailed",
        "ModelGardenInferenceDeploymentNotReady",
        "ModelGardenCarbonBudgetExceeded",
        "ModelGardenOperatorReconcileErrors",
    } <= alerts


def test_dashboard_uses_a_datasource_variable_rate_interval_and_a_stable_uid() -> None:
    dash = dashboard()
    assert dash["uid"] == "model-garden-overview"
    assert any(
        v["type"] == "datasource" and v["name"] == "datasource" for v in dash["templating"]["list"]
    )
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert (
                "rate(" not in target["expr"]
                or "[$__rate_interval]" in target["expr"]
                or ":rate5m" in target["expr"]
            )
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for topic in (
        "training progress",
        "tokens/s",
        "j/token",
        "gco2e per 1k tokens",
        "emissions by model",
        "region",
    ):
        assert topic in titles, topic


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory, rules_file: Path) -> Iterator[Prometheus]:
    """Prometheus after ~12 s of scraping the three sources at 1 s (rules evaluated at 1 s)."""
    tmp = tmp_path_factory.mktemp("prometheus")
    stop = threading.Event()
    operator_job = next(
        s["metadata"]["name"] for s in by_kind(render(DEFAULT), "Service")
    )  # the ServiceMonitor's job label: the Service's name
    with operator_metrics() as op, trainer(stop) as tr, meter(tmp) as me:
        scrape = {
            operator_job: f"127.0.0.1:{op}",
            "trainer": f"127.0.0.1:{tr}",
            "meter": f"127.0.0.1:{me}",
        }
        with running(tmp, scrape, rules_file) as prom:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                up = [t for t in prom.targets() if t["health"] == "up"]
                ready = prom.query("modelgarden:training_joules_per_token:rate5m") and prom.query(
                    "model_garden_serving_joules_per_token"
                )
                if len(up) == 3 and ready:
                    break
                time.sleep(1)
            time.sleep(3)
            yield prom


def test_prometheus_scrapes_all_three_sources(scraped: Prometheus) -> None:
    health = {t["labels"].get("job", t["scrapePool"]): t["health"] for t in scraped.targets()}
    assert sorted(health.values()) == ["up", "up", "up"], scraped.targets()


def test_every_metric_of_dashboard_and_rules_is_scraped_or_recorded(scraped: Prometheus) -> None:
    groups = rule_groups()
    available = scraped.names() | recorded(groups)
    wanted = {n for e in dashboard_exprs() + rule_exprs(groups) for n in metric_names(e)}
    assert wanted, "no metric names parsed"
    assert sorted(wanted - available) == []
    for selector in variable_selectors():
        for pattern in name_regexes(selector):
            assert any(re.fullmatch(pattern, n) for n in available), pattern


def test_every_dashboard_query_returns_data(scraped: Prometheus) -> None:
    empty = [e for e in dashboard_exprs() if not scraped.query(for_prometheus(e))]
    assert empty == []


def test_alerts_fire_on_the_scraped_conditions(scraped: Prometheus) -> None:
    """The sources report a failed job, a job stopped by its carbon budget, an unready deployment
    and a reconcile error; the rules see them (pending or firing: `for` durations are longer than
    this test; the budget alert has none)."""
    results = scraped.query("ALERTS")
    names = {r["metric"]["alertname"] for r in results}
    assert {"ModelGardenFineTuneJobFailed", "ModelGardenInferenceDeploymentNotReady"} <= names
    budget = [
        r["metric"]
        for r in results
        if r["metric"]["alertname"] == "ModelGardenCarbonBudgetExceeded"
    ]
    assert [(m["namespace"], m["name"], m["alertstate"]) for m in budget] == [
        ("team-a", "over-budget", "firing")
    ]  # the budget-stopped job only, not the other failed one
    assert scraped.query('modelgarden_operator_reconcile_errors_total{kind="FineTuneJob"}')


def test_training_emissions_split_by_model_and_region(scraped: Prometheus) -> None:
    """The trainer's constant labels (training_labels of its config) reach the dashboard."""
    (expr,) = [
        t["expr"]
        for p in dashboard()["panels"]
        if p["title"] == "Training emissions by model and region"
        for t in p["targets"]
    ]
    rows = scraped.query(for_prometheus(expr))
    assert [
        (r["metric"]["model"], r["metric"]["country"], r["metric"]["region"]) for r in rows
    ] == [("chat", "FRA", "ile-de-france")]
    assert float(rows[0]["value"][1]) > 0


def test_the_helm_test_pods_check_passes_on_the_operators_metrics(tmp_path: Path) -> None:
    """The `helm test` pod's script, run here against the operator's real metrics server (its
    Service URL swapped for the local port); and it fails where the metrics are missing."""
    import subprocess
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    (pod,) = by_kind(render(DEFAULT), "Pod")
    script = pod["spec"]["containers"][0]["command"][-1]
    assert re.search(r'url = "http://[^"]+/metrics"', script)

    def run(url: str) -> subprocess.CompletedProcess[str]:
        local = re.sub(r'url = "http://[^"]+"', f'url = "{url}"', script)
        return subprocess.run(
            [sys.executable, "-c", local], capture_output=True, text=True, timeout=120
        )

    with operator_metrics() as port:
        ok = run(f"http://127.0.0.1:{port}/metrics")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    class Empty(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Empty)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        bad = run(f"http://127.0.0.1:{server.server_address[1]}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert bad.returncode != 0 and "lacks" in bad.stderr
