"""A real Prometheus (Debian's `prometheus` package, scripts/bootstrap.sh) and its promtool."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from harness.envtest import free_port

from .sources import answering


def tool(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise RuntimeError(
            f"{name} not found: scripts/bootstrap.sh installs Debian's prometheus package"
        )
    return found


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body}")
        return list(body["data"]["result"])

    def names(self) -> set[str]:
        r = httpx.get(f"{self.url}/api/v1/label/__name__/values", timeout=10)
        return set(r.json()["data"])

    def targets(self) -> list[dict[str, Any]]:
        return list(
            httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        )


@contextmanager
def running(workdir: Path, scrape: dict[str, str], rule_file: Path) -> Iterator[Prometheus]:
    """Prometheus on loopback, scraping ``{job: host:port}`` every second (pod labels honoured,
    as the chart's PodMonitor does) and evaluating ``rule_file`` every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rule_file)],
        "scrape_configs": [
            {"job_name": job, "honor_labels": True, "static_configs": [{"targets": [target]}]}
            for job, target in scrape.items()
        ],
    }
    with running_config(workdir, config) as prometheus:
        yield prometheus


@contextmanager
def running_config(workdir: Path, config: dict[str, Any]) -> Iterator[Prometheus]:
    """Prometheus on loopback with this configuration, until the block ends."""
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def output() -> str:
        return (workdir / "prometheus.log").read_text()[-2000:]

    try:
        with answering(proc, f"{url}/-/ready", "prometheus", output):
            yield Prometheus(url)
    finally:
        log.close()
