"""A canary on the real node: two versions of one model behind the deployment's one Service.

There is no Gateway API here, so the operator splits by replicas (``status.trafficMode:
replicas``): one Deployment per version, the deployment's Service selecting both versions'
pods, kube-proxy spreading the connections over them. Requests through the Service's ClusterIP
with the official ``openai`` client reach both versions; promotion (one field change: 0 for the
old version, 100 for the new) sends every later request to the new version while the old one's
pod stays up. Each version's pod counts its own requests (vLLM's ``/metrics``), read by pod IP.

Both versions are the seeded base model imported twice (two ModelVersions of model ``canary``),
so the two vLLM pods start from the same files: what is tested is where requests go.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from openai import OpenAI

from model_garden.api.labels import LABEL_IDEP
from model_garden.operator.inferencedeployment.traffic import LABEL_SERVING_VERSION

from .platform import API, BASE_URI, TEAM, Platform, condition, wait_for

pytestmark = pytest.mark.cluster

NAME = "canary"
OLD, NEW = "canary-v1", "canary-v2"
REQUESTS = 24
"""Per phase. kube-proxy picks an endpoint at random per connection: all 24 on one of two pods
has probability 2 x 0.5^24."""
SERVED = re.compile(r"^vllm:request_success_total\{[^}]*\}\s+([0-9.e+]+)$", re.M)


def model_version(name: str, version: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": TEAM},
        "spec": {
            "model": NAME,
            "version": version,
            "artifact": {"uri": BASE_URI, "format": "merged"},
        },
    }


def deployment(old_weight: int, new_weight: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceDeployment",
        "metadata": {"name": NAME, "namespace": TEAM},
        "spec": {
            "replicas": 1,  # 50/50 of 1 replica: 1 + 1 (a version with a weight gets one)
            "traffic": [
                {"modelVersion": OLD, "weight": old_weight},
                {"modelVersion": NEW, "weight": new_weight},
            ],
            # Eager: no torch.compile at start, so two pods start sooner on 2 cores.
            "engine": {"maxModelLen": 128, "extraArgs": ["--enforce-eager"]},
            "resources": {"cpu": "800m", "memory": "3Gi"},
        },
    }


def served_by_version(platform: Platform) -> dict[str, float]:
    """Requests each version's pods finished, from vLLM's own counter on each pod."""
    counts = {OLD: 0.0, NEW: 0.0}
    for pod in platform.items("pods", TEAM, f"{LABEL_IDEP}={NAME}"):
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or pod["metadata"].get("deletionTimestamp"):
            continue
        port = next(
            p["containerPort"]
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
            if p["name"] == "http"
        )
        text = httpx.get(f"http://{ip}:{port}/metrics", timeout=10).text
        version = pod["metadata"]["labels"][LABEL_SERVING_VERSION]
        counts[version] += sum(float(v) for v in SERVED.findall(text))
    return counts


def send(client: OpenAI, model: str, n: int) -> None:
    for i in range(n):
        # A fresh connection each time: kube-proxy balances connections, not requests.
        reply = client.with_options(http_client=httpx.Client(timeout=120)).completions.create(
            model=model, prompt=f"Describe the pets. {i}", max_tokens=2
        )
        assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_a_canary_splits_requests_and_promotion_moves_them(platform: Platform) -> None:
    t = time.monotonic()
    platform.apply(model_version(OLD, 1), model_version(NEW, 2))

    def verified() -> bool | None:
        return (
            all(
                condition(platform.get("modelversion", n), "Ready").get("status") == "True"
                for n in (OLD, NEW)
            )
            or None
        )

    wait_for("both versions verified", verified, 240)
    platform.apply(deployment(50, 50))

    def split_ready() -> dict[str, Any] | None:
        status = (platform.get("inferencedeployment", NAME) or {}).get("status") or {}
        rows = status.get("traffic") or []
        ok = len(rows) == 2 and all(r["readyReplicas"] == 1 for r in rows)
        return status if ok and status.get("trafficMode") == "replicas" else None

    try:
        status = wait_for("both versions Ready behind one Service", split_ready, 600, 2)
        platform.timed("canary: two versions Ready", t)
        assert [(r["modelVersion"], r["weight"]) for r in status["traffic"]] == [
            (OLD, 50),
            (NEW, 50),
        ]
        svc = platform.get("service", NAME) or {}
        port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
        client = OpenAI(base_url=f"http://{svc['spec']['clusterIP']}:{port}/v1", api_key="none")
        (model,) = [m.id for m in client.models.list().data]
        assert model == NAME

        before = served_by_version(platform)
        send(client, model, REQUESTS)
        split = {v: n - before[v] for v, n in served_by_version(platform).items()}
        print(f"[e2e] canary 50/50 over {REQUESTS} requests: {split}")
        assert sum(split.values()) == REQUESTS, split
        assert split[OLD] > 0 and split[NEW] > 0, split

        t = time.monotonic()
        platform.apply(deployment(0, 100))  # promotion: one field change

        def promoted() -> dict[str, Any] | None:
            svc = platform.get("service", NAME) or {}
            selector = svc.get("spec", {}).get("selector") or {}
            return svc if selector.get(LABEL_SERVING_VERSION) == NEW else None

        wait_for("the Service selects only the new version", promoted, 120)
        platform.timed("canary: promoted", t)
        before = served_by_version(platform)
        send(client, model, REQUESTS)
        after = {v: n - before[v] for v, n in served_by_version(platform).items()}
        print(f"[e2e] canary 0/100 over {REQUESTS} requests: {after}")
        assert after == {OLD: 0, NEW: REQUESTS}, after
        old_pods = platform.items("pods", TEAM, f"{LABEL_SERVING_VERSION}={OLD}")
        assert old_pods, "at weight 0 the old version stays up (blue-green: switch back at once)"
    finally:
        platform.kubectl("delete", "inferencedeployment", NAME, "-n", TEAM, "--wait=true")
        platform.kubectl("delete", "modelversion", OLD, NEW, "-n", TEAM, "--wait=true")

        def gone() -> bool | None:
            return not platform.items("pods", TEAM, f"{LABEL_IDEP}={NAME}") or None

        wait_for("the canary's pods gone", gone, 180)
