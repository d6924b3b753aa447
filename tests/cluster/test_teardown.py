"""After the node stops, nothing of it is left: no process, mount, netns, link or iptables rule.

Runs last in this folder (pytest collects files in name order): it uninstalls what the
end-to-end tests helm-installed, stops the session's node itself and compares the host with
the snapshot taken before the node started.
"""

from __future__ import annotations

import os

import pytest

from harness import node_host
from harness.node import Node
from harness.node_host import HostSnapshot

from .conftest import BACKGROUND, INSTALLED
from .platform import uninstall, wait_for

pytestmark = pytest.mark.cluster


def test_teardown_leaves_nothing_behind(node: Node, host_before: HostSnapshot) -> None:
    for stop_background in list(BACKGROUND):
        stop_background()
    for platform in INSTALLED:
        uninstall(platform)
        wait_for(
            "the operator pod gone after helm uninstall",
            lambda installed=platform: not installed.operator_pods(),  # type: ignore[misc]
            90,
        )
    pids = [p.pid for p in node.processes.values()]
    assert node.kube is not None
    pids += [p.pid for p in node.kube.processes.values()]
    assert len(pids) == 7, (
        pids
    )  # etcd, apiserver, controller-manager, scheduler, containerd, kubelet, proxy
    problems = node.stop()
    assert problems == []
    alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
    assert alive == []
    left = node_host.processes_mentioning(str(node.workdir))
    assert left == [], [node_host.command_line(pid) for pid in left]
    assert node_host.mounts_under(node.workdir, node.containerd_root) == []
    added = HostSnapshot.take().added_since(host_before)
    assert added == {}, added
    assert (node.logs / "kubelet.log").stat().st_size > 0
