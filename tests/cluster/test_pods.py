"""What only a real kubelet proves: the restricted securityContext, termination messages,
CNI pod IPs, readiness probes and Service routing through kube-proxy."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from harness.node import Node

pytestmark = pytest.mark.cluster

RUNTIME = "ghcr.io/model-garden/runtime-cpu:0.1.0"
RESTRICTED = {
    "runAsUser": 1000,
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def _wait(node: Node, what: str, check: object, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        out = node.kubectl("get", what, "-o", "json", check=False)
        if out.returncode == 0:
            last = json.loads(out.stdout)
            if check(last):  # type: ignore[operator]
                return last
        time.sleep(1)
    raise AssertionError(
        f"{what} not as expected in {timeout}s: {json.dumps(last.get('status'))[:2000]}"
    )


def test_restricted_pod_runs_and_reports_termination_message(node: Node) -> None:
    script = (
        "import os, pathlib; "
        "pathlib.Path('/dev/termination-log').write_text(f'uid={os.getuid()}'); "
        "open('/probe', 'w')"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "restricted", "namespace": "default"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": RUNTIME,
                    "imagePullPolicy": "Never",
                    "command": ["python", "-c", script],
                    "securityContext": RESTRICTED,
                }
            ],
        },
    }
    start = time.monotonic()
    node.kubectl("apply", "-f", "-", input=json.dumps(pod))
    done = _wait(
        node, "pod/restricted", lambda p: p["status"].get("phase") in ("Succeeded", "Failed")
    )
    print(f"[restricted pod] {time.monotonic() - start:.1f}s")
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    # The read-only root refused the write to /probe after the message was written.
    assert done["status"]["phase"] == "Failed", terminated
    assert terminated["message"] == "uid=1000", terminated
    assert "Read-only file system" in node.kubectl("logs", "restricted").stdout
    node.kubectl("delete", "pod", "restricted", "--wait=true")


def test_deployment_gets_cni_ip_passes_probe_and_is_reached_through_service(node: Node) -> None:
    server = "import http.server as h; h.HTTPServer(('', 8080), h.SimpleHTTPRequestHandler).serve_forever()"
    labels = {"app": "web"}
    manifests = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": RUNTIME,
                                "imagePullPolicy": "Never",
                                "command": ["python", "-c", server],
                                "workingDir": "/etc",
                                "securityContext": RESTRICTED,
                                "ports": [{"containerPort": 8080}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/hostname", "port": 8080},
                                    "periodSeconds": 1,
                                },
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]
    start = time.monotonic()
    node.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}),
    )
    _wait(node, "deployment/web", lambda d: d["status"].get("readyReplicas") == 1)
    print(f"[deployment ready] {time.monotonic() - start:.1f}s")
    pods = json.loads(node.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    assert pods[0]["status"]["podIP"].startswith("10.214.0."), pods[0]["status"]
    cluster_ip = json.loads(node.kubectl("get", "svc", "web", "-o", "json").stdout)["spec"][
        "clusterIP"
    ]
    body = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # kube-proxy syncs its rules a moment after the endpoint
        try:
            with urllib.request.urlopen(f"http://{cluster_ip}/hostname", timeout=2) as resp:
                body = resp.read().decode()
                break
        except OSError:
            time.sleep(0.5)
    assert body.strip() == pods[0]["metadata"]["name"], body
    node.kubectl("delete", "deployment,service", "web", "--wait=true")
