"""The `node` fixture: one real single-node cluster (tests/harness/node.py) per test session.

Its logs (kubelet, containerd, kube-proxy, scheduler, control plane) are kept under pytest's
basetemp and attached to a failing test's report. The host is snapshotted before the node starts
and after it stops, so test_teardown.py can prove nothing was left behind.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import node as node_harness
from harness.node_host import HostSnapshot

_LOGS: list[Path] = []


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
