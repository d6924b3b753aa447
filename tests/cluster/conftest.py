"""The `node` fixture: one real single-node cluster (tests/harness/node.py) per test session,
and `platform`: Model Garden helm-installed on it (tests/cluster/platform.py), or on the cluster
``$MODEL_GARDEN_E2E_KUBECONFIG`` names (kind, scripts/e2e-kind) without starting a node.

Its logs (kubelet, containerd, kube-proxy, scheduler, control plane) are kept under pytest's
basetemp and attached to a failing test's report. The host is snapshotted before the node starts
and after it stops, so test_teardown.py can prove nothing was left behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chart.prometheus import Prometheus, running_config
from harness import node as node_harness
from harness.intensity import TOKEN, IntensityServer
from harness.node_host import NODE_IP, HostSnapshot

from .platform import Platform, install, uninstall

EXTERNAL_KUBECONFIG = "MODEL_GARDEN_E2E_KUBECONFIG"

_LOGS: list[Path] = []
INSTALLED: list[Platform] = []  # test_teardown.py uninstalls these before it stops the node
# Background work that talks to the node (each entry stops one): test_teardown.py stops it all
# first, or a `kubectl --kubeconfig=<node dir>/...` it runs would be counted as a leftover.
BACKGROUND: list[Callable[[], None]] = []


@pytest.fixture(scope="session")
def host_before() -> HostSnapshot:
    return HostSnapshot.take()


@pytest.fixture(scope="session")
def node(
    host_before: HostSnapshot, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[node_harness.Node]:
    logs = tmp_path_factory.mktemp("node-logs")
    _LOGS.append(logs)
    started = node_harness.start(logs=logs)
    print(f"\n[node] up: {started.timings}")
    try:
        yield started
    finally:
        problems = started.stop()
        if problems:
            print(f"[node] teardown problems: {problems}")


@pytest.fixture(scope="session")
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """Model Garden installed by helm, with a tiny base model and datasets on its claim."""
    workdir = tmp_path_factory.mktemp("platform")
    external = os.environ.get(EXTERNAL_KUBECONFIG)
    if external:
        installed = Platform(kubeconfig=Path(external), workdir=workdir)
        install(installed, hostpath=None)  # the cluster provisions the claim
    else:
        node: node_harness.Node = request.getfixturevalue("node")
        grid: IntensityServer = request.getfixturevalue("grid_server")
        installed = Platform(kubeconfig=node.kubeconfig, workdir=workdir)
        install(installed, hostpath=node.workdir / "artifacts", grid=(grid.url, TOKEN))
    INSTALLED.append(installed)
    try:
        yield installed
    finally:
        uninstall(installed)  # unless test_teardown.py did it already
        INSTALLED.remove(installed)


@pytest.fixture(scope="session")
def grid_server(node: node_harness.Node) -> Iterator[IntensityServer]:
    """The live intensity provider the installed operator reads (Electricity Maps' format), on
    the node's own address so the operator pod reaches it; its value starts low (100 g/kWh)."""
    server = IntensityServer(100, host=NODE_IP)
    BACKGROUND.append(server.close)
    yield server
    server.close()


@pytest.fixture(scope="session")
def own_node(request: pytest.FixtureRequest) -> node_harness.Node | None:
    """The harness node when the tests run on it (its containerd can be asked), else None."""
    if os.environ.get(EXTERNAL_KUBECONFIG):
        return None
    node: node_harness.Node = request.getfixturevalue("node")
    return node


def pod_targets(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """file_sd targets: each running pod's ``metrics`` or ``progress`` port, with the labels the
    chart's ServiceMonitor/PodMonitor relabelling gives (component, namespace, pod)."""
    targets = []
    for pod in pods:
        ip = pod.get("status", {}).get("podIP")
        if not ip or pod["status"].get("phase") != "Running":
            continue
        meta = pod["metadata"]
        for container in pod["spec"]["containers"]:
            for port in container.get("ports") or []:
                if port.get("name") in ("metrics", "progress"):
                    labels = {
                        "component": meta.get("labels", {}).get("app.kubernetes.io/component", ""),
                        "namespace": meta["namespace"],
                        "pod": meta["name"],
                    }
                    targets.append({"targets": [f"{ip}:{port['containerPort']}"], "labels": labels})
    return targets


@pytest.fixture(scope="session")
def prometheus(platform: Platform) -> Iterator[Prometheus]:
    """A real Prometheus scraping every Model Garden pod's metrics port each second.

    Debian's Prometheus is built without kubernetes_sd, so this fixture is its discovery: a
    thread lists the pods through the API server every second and writes them as file_sd
    targets (Prometheus watches the file), with the labels the chart's monitors would give.
    """
    workdir = platform.workdir / "prometheus"
    workdir.mkdir()
    targets = workdir / "pods.json"
    targets.write_text("[]")
    stop = threading.Event()

    def discover() -> None:
        while not stop.wait(1):
            try:
                out = platform.kubectl("get", "pods", "-A", "-o", "json", check=False)
            except subprocess.TimeoutExpired:  # an API server outage (a fault test): next round
                continue
            if out.returncode == 0:
                found = pod_targets(json.loads(out.stdout)["items"])
                scratch = targets.with_suffix(".tmp")
                scratch.write_text(json.dumps(found))
                scratch.replace(targets)

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "model-garden-pods",
                "honor_labels": True,
                "file_sd_configs": [{"files": [str(targets)], "refresh_interval": "1s"}],
            }
        ],
    }
    thread = threading.Thread(target=discover, name="pod-discovery", daemon=True)
    thread.start()

    def stop_discovery() -> None:
        stop.set()
        thread.join(60)  # a kubectl call in flight ends within its own timeout

    BACKGROUND.append(stop_discovery)
    try:
        with running_config(workdir, config) as running:
            yield running
    finally:
        stop_discovery()
        BACKGROUND.remove(stop_discovery)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.failed and _LOGS and "cluster" in item.keywords:
        for log in sorted(_LOGS[-1].glob("*.log")):
            report.sections.append(
                (f"node log {log.name}", log.read_text(errors="replace")[-4000:])
            )
