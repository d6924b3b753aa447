"""The user's path, end to end, on a real node: FineTuneJob → progress → ModelVersion →
InferenceDeployment → the official `openai` client through the Service → Prometheus → delete.

One training run and one served deployment; each step's duration is printed. There is no
cluster DNS here (no CoreDNS image can be had offline), so the client reaches the Service by
the ClusterIP that kube-proxy routes, as a pod would after resolving the status' endpoint name.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from openai import OpenAI

from chart.prometheus import Prometheus
from harness.node import Node
from harness.node_host import run
from model_garden.api.labels import LABEL_FTJ, LABEL_IDEP

from .netpol import admits
from .platform import (
    API,
    BASE_URI,
    DATASET_URI,
    SYSTEM,
    TEAM,
    Platform,
    condition,
    wait_for,
)

pytestmark = pytest.mark.cluster

JOB = "pets"
API_KEY = "e2e-secret-key"
CHECKPOINT_EVERY = 10
TOTAL_STEPS = 300


def finetunejob(name: str, **spec: Any) -> dict[str, Any]:
    """A LoRA run of the tiny model on the pets data: 300 steps, ~20 s on one CPU (long enough
    to watch it and to break it mid-run)."""
    body: dict[str, Any] = {
        "baseModel": {"uri": BASE_URI},
        "dataset": {"uri": DATASET_URI, "maxSeqLength": 64},
        "method": {"type": "lora", "lora": {"rank": 8, "alpha": 16}},
        "hyperparameters": {
            "epochs": 10,
            "maxSteps": TOTAL_STEPS,
            "batchSize": 4,
            "learningRate": "1e-3",
        },
        "checkpointing": {"everySteps": CHECKPOINT_EVERY},
        "resources": {"cpu": "1", "memory": "3Gi"},
    }
    body.update(spec)
    return {
        "apiVersion": API,
        "kind": "FineTuneJob",
        "metadata": {"name": name, "namespace": TEAM},
        "spec": body,
    }


def _ftj_row(platform: Platform, name: str) -> dict[str, str]:
    """`kubectl get ftj NAME` as a user reads it: the printer columns, by header.

    Columns are cut at the headers' offsets, since an empty cell leaves only spaces.
    """
    lines = platform.kubectl("get", "ftj", name, "-n", TEAM).stdout.splitlines()
    if len(lines) < 2:
        return {}
    header, row = lines[0], lines[1]
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    bounds = zip(starts, [*starts[1:], None], strict=True)
    return {header[a:b].strip(): row[a:b].strip() for a, b in bounds}


def _service_url(platform: Platform, name: str) -> str:
    svc = platform.get("service", name) or {}
    port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
    return f"http://{svc['spec']['clusterIP']}:{port}/v1"


def _network_policy_admits_only_its_peers(platform: Platform) -> None:
    """The policy's intent on the live pods (this node's bridge CNI does not enforce it)."""
    policies = platform.items("networkpolicies", TEAM, f"{LABEL_IDEP}={JOB}")
    assert len(policies) == 1, policies
    (server,) = platform.items("pods", TEAM, f"{LABEL_IDEP}={JOB}")
    ports = {
        p["name"]: p["containerPort"] for c in server["spec"]["containers"] for p in c["ports"]
    }
    (operator,) = platform.operator_pods()

    def labels_of(ns: str) -> dict[str, str]:
        return dict((platform.get("namespace", ns) or {})["metadata"].get("labels") or {})

    notebook = {"metadata": {"namespace": TEAM, "labels": {"app": "notebook"}}}
    stranger = {"metadata": {"namespace": "default", "labels": {"app": "notebook"}}}
    meter, api = ports["metrics"], ports["http"]
    assert admits(policies, server, meter, operator, labels_of(SYSTEM))
    assert not admits(policies, server, meter, notebook, labels_of(TEAM))
    assert admits(policies, server, api, notebook, labels_of(TEAM))
    assert not admits(policies, server, api, stranger, labels_of("default"))


def node_containers(node: Node, pod_uid: str) -> list[str]:
    """containerd's containers (sandbox included) of one pod, by the label kubelet sets."""
    label = f'labels."io.kubernetes.pod.uid"=={pod_uid}'
    return run([*node.ctr, "containers", "ls", "-q", label]).stdout.split()


def test_fine_tune_serve_chat_scrape_delete(
    platform: Platform, prometheus: Prometheus, own_node: Node | None
) -> None:
    t = time.monotonic()
    platform.apply(finetunejob(JOB))

    def training_progress() -> dict[str, str] | None:
        row = _ftj_row(platform, JOB)
        step = row.get("STEP", "")
        return row if step.isdigit() and 0 < int(step) < int(row.get("TOTAL", "0") or 0) else None

    row = wait_for("progress in `kubectl get ftj` while training", training_progress, 180, 0.5)
    platform.timed("FineTuneJob → progress shown", t)
    print(f"[e2e] kubectl get ftj while training: {row}")

    def produced_version() -> dict[str, Any] | None:
        ftj = platform.get("ftj", JOB)
        name = ((ftj or {}).get("status") or {}).get("modelVersion")
        mv = platform.get("modelversion", name) if name else None
        return mv if condition(mv, "Ready").get("status") == "True" else None

    mv = wait_for("a verified ModelVersion", produced_version, 300)
    platform.timed("progress → ModelVersion verified", t)
    ftj = platform.get("ftj", JOB) or {}
    assert condition(ftj, "Succeeded").get("status") == "True", ftj.get("status")
    assert ftj["status"]["progress"]["step"] == ftj["status"]["progress"]["totalSteps"]
    assert mv["status"]["trainingEmissionsKg"] > 0, mv["status"]
    assert mv["status"]["digest"].startswith("sha256:") or len(mv["status"]["digest"]) == 64
    version = mv["metadata"]["name"]
    logs = platform.mg("jobs", "logs", JOB)  # the CLI against the cluster reads the pod's log
    assert logs.returncode == 0, logs.stderr
    assert '"msg": ' in logs.stdout and "Succeeded" in logs.stdout, logs.stdout[-2000:]

    t = time.monotonic()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pets-api-key", "namespace": TEAM},
        "data": {"key": base64.b64encode(API_KEY.encode()).decode()},
    }
    idep = {
        "apiVersion": API,
        "kind": "InferenceDeployment",
        "metadata": {"name": JOB, "namespace": TEAM},
        "spec": {
            "modelVersion": version,
            "apiKeySecret": {"name": "pets-api-key", "key": "key"},
            "engine": {"maxModelLen": 256},
            "resources": {"cpu": "1500m", "memory": "4Gi"},
        },
    }
    platform.apply(secret, idep)

    def ready() -> dict[str, Any] | None:
        body = platform.get("inferencedeployment", JOB)
        ok = condition(body, "Ready").get("status") == "True"
        return body if ok and (body or {}).get("status", {}).get("endpoint") else None

    served = wait_for("InferenceDeployment Ready with an endpoint", ready, 420, 2)
    platform.timed("InferenceDeployment → Ready", t)
    print(f"[e2e] endpoint: {served['status']['endpoint']}")

    t = time.monotonic()
    client = OpenAI(base_url=_service_url(platform, JOB), api_key=API_KEY, timeout=120)
    served_models = {m.id for m in client.models.list().data}
    adapter = mv["spec"]["model"]
    assert adapter in served_models, served_models
    base = next(m for m in served_models if m != adapter)
    reply = client.chat.completions.create(
        model=base,
        messages=[{"role": "user", "content": "Describe the pets. a red cat"}],
        max_tokens=12,
    )
    assert reply.choices[0].message.content and reply.usage and reply.usage.completion_tokens > 0
    chunks = client.chat.completions.create(
        model=adapter,
        messages=[{"role": "user", "content": "Describe the pets. a blue owl"}],
        max_tokens=12,
        stream=True,
    )
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len(pieces) > 1 and "".join(pieces), pieces
    denied = OpenAI(base_url=_service_url(platform, JOB), api_key="wrong", timeout=30)
    with pytest.raises(Exception, match="401|Unauthorized"):
        denied.models.list()
    platform.timed("openai: chat, stream, adapter by name", t)

    t = time.monotonic()

    def scraped() -> set[str] | None:
        seen = {
            r["metric"].get("component", "")
            for r in prometheus.query('max_over_time(up{job="model-garden-pods"}[15m]) == 1')
        }
        return seen if {"operator", "trainer", "server"} <= seen else None

    try:
        wait_for("Prometheus scraped operator, trainer and server pods", scraped, 60)
    except AssertionError as exc:
        targets = [(t["labels"], t["health"], t.get("lastError", "")) for t in prometheus.targets()]
        raise AssertionError(f"{exc}; targets: {targets}") from None
    meter = prometheus.query(f'{{component="server", namespace="{TEAM}"}}')
    assert meter, "no series from the meter pod"
    platform.timed("Prometheus scraped operator, trainer, meter", t)

    _network_policy_admits_only_its_peers(platform)

    t = time.monotonic()
    selectors = [f"{LABEL_FTJ}={JOB}", f"{LABEL_IDEP}={JOB}"]
    uids = [p["metadata"]["uid"] for sel in selectors for p in platform.items("pods", TEAM, sel)]
    assert uids, "no pods of the FineTuneJob or the InferenceDeployment to follow"
    platform.kubectl("delete", "inferencedeployment,ftj", JOB, "-n", TEAM, "--wait=true")

    def left_behind() -> list[str]:
        left = [
            f"{kind}/{item['metadata']['name']}"
            for kind in ("jobs", "deployments", "services", "configmaps", "pods")
            for sel in selectors
            for item in platform.items(kind, TEAM, sel)
        ]
        if own_node is not None:  # the containers themselves, from containerd
            left += [f"container of pod {uid}" for uid in uids if node_containers(own_node, uid)]
        return left

    wait_for("children of the deleted resources gone", lambda: not left_behind(), 180)
    # The version outlives its job (it is what was produced), and so does its verify Job.
    assert platform.get("modelversion", version) is not None
    platform.timed("delete → children gone", t)
    print(f"[e2e] timings: {json.dumps(platform.timings)}")
