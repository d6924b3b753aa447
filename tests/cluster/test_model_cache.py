"""A model cache shared by the server pods, on the real node: ``spec.modelCache``.

A ModelVersion whose artifact is on S3 (moto's server, on the node's address so pods reach it,
with a storage Secret as a user would write it) is verified by its Job, then served by one pod
that downloads it into a ReadWriteMany claim folder; scaled to two replicas, the second pod
finds every file there and downloads none (each launcher logs what it fetched and kept). Both
pods answer the official ``openai`` client through the Service.

Needs the harness node: the S3 server runs on this machine, which a kind cluster's pods cannot
reach (scripts/e2e-kind skips it, saying so).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from harness import node as node_harness
from harness.node_host import NODE_IP
from model_garden.api.labels import LABEL_IDEP

from .conftest import BACKGROUND, EXTERNAL_KUBECONFIG
from .platform import API, TEAM, Platform, condition, hostpath_volume, wait_for

pytestmark = pytest.mark.cluster

NAME = "cached"
VERSION = "cached-v1"
SECRET = "s3-credentials"
CACHE_CLAIM = "model-cache"
CACHE_PV = "mg-node-model-cache"
BUCKET = "models"
ARTIFACT = f"s3://{BUCKET}/tiny/v1"
FETCHED = re.compile(r"fetched (\S+): (\d+) file\(s\) downloaded, (\d+) kept from the cache")


@pytest.fixture(scope="module")
def s3_on_the_node(
    request: pytest.FixtureRequest, platform: Platform
) -> Iterator[tuple[str, Path]]:
    """moto's S3 server on the node's address, holding the seeded tiny model as a published
    artifact (with its marker); yields its URL and the node's cache folder."""
    if os.environ.get(EXTERNAL_KUBECONFIG):
        pytest.skip("the S3 server runs on this machine, which a kind cluster's pods cannot reach")
    node: node_harness.Node = request.getfixturevalue("node")
    from moto.server import ThreadedMotoServer

    from model_garden.storage import s3 as s3io
    from model_garden.storage.transfer import publish

    server = ThreadedMotoServer(ip_address=NODE_IP, port=0, verbose=False)
    server.start()
    BACKGROUND.append(server.stop)
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": url,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    cache = node.workdir / "model-cache"
    try:
        client = s3io.client()
        client.create_bucket(Bucket=BUCKET)
        publish(client, node.workdir / "artifacts" / "base" / "tiny", ARTIFACT)
        platform.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SECRET, "namespace": TEAM},
                "stringData": env,
            },
            hostpath_volume(cache, CACHE_PV, "ReadWriteMany", "1Gi"),  # several pods
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": CACHE_CLAIM, "namespace": TEAM},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "",
                    "volumeName": CACHE_PV,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        yield url, cache
    finally:
        platform.kubectl("delete", "pvc", CACHE_CLAIM, "-n", TEAM, "--wait=true", check=False)
        platform.kubectl("delete", "pv", CACHE_PV, "--wait=true", check=False)
        platform.kubectl("delete", "secret", SECRET, "-n", TEAM, check=False)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
        BACKGROUND.remove(server.stop)
        shutil.rmtree(cache, ignore_errors=True)


def deployment(replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceDeployment",
        "metadata": {"name": NAME, "namespace": TEAM},
        "spec": {
            "modelVersion": VERSION,
            "replicas": replicas,
            "modelCache": f"pvc://{CACHE_CLAIM}/{TEAM}",
            "storageSecret": SECRET,
            "engine": {"maxModelLen": 128, "extraArgs": ["--enforce-eager"]},
            "resources": {"cpu": "800m", "memory": "3Gi"},
        },
    }


def fetches(platform: Platform, pod: str) -> list[tuple[str, int, int]]:
    """(uri, downloaded, kept) of each S3 fetch the pod's launcher logged."""
    log = platform.kubectl("logs", pod, "-n", TEAM, "-c", "server", check=False).stdout
    return [(m[1], int(m[2]), int(m[3])) for m in FETCHED.finditer(log)]


def ready_pods(platform: Platform, count: int) -> list[str] | None:
    status = (platform.get("inferencedeployment", NAME) or {}).get("status") or {}
    if status.get("readyReplicas") != count:
        return None
    pods = platform.items("pods", TEAM, f"{LABEL_IDEP}={NAME}")
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    return [p["metadata"]["name"] for p in live] if len(live) == count else None


def test_a_second_replica_serves_from_the_files_the_first_downloaded(
    platform: Platform, s3_on_the_node: tuple[str, Path]
) -> None:
    _, cache = s3_on_the_node
    t = time.monotonic()
    platform.apply(
        {
            "apiVersion": API,
            "kind": "ModelVersion",
            "metadata": {"name": VERSION, "namespace": TEAM},
            "spec": {
                "model": NAME,
                "version": 1,
                "artifact": {"uri": ARTIFACT, "format": "merged"},
                "storageSecret": SECRET,
            },
        }
    )

    def verified() -> dict[str, Any] | None:
        mv = platform.get("modelversion", VERSION)
        return mv if condition(mv, "Ready").get("status") == "True" else None

    try:
        mv = wait_for("the S3 version verified by its Job", verified, 240)
        assert mv["status"]["digest"].startswith("sha256:")
        platform.timed("model cache: S3 version verified", t)

        t = time.monotonic()
        platform.apply(deployment(1))
        (first,) = wait_for("one replica Ready", lambda: ready_pods(platform, 1), 420, 2)
        platform.timed("model cache: first replica Ready", t)
        files = len([p for p in (cache / TEAM).rglob("*") if p.is_file()])
        assert fetches(platform, first) == [(ARTIFACT, files, 0)] and files >= 3

        t = time.monotonic()
        platform.apply(deployment(2))
        pods = wait_for("two replicas Ready", lambda: ready_pods(platform, 2), 420, 2)
        platform.timed("model cache: second replica Ready", t)
        (second,) = [p for p in pods if p != first]
        assert fetches(platform, second) == [(ARTIFACT, 0, files)]
        print(f"[e2e] model cache: first pod downloaded {files} files, the second kept them all")

        svc = platform.get("service", NAME) or {}
        port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
        client = OpenAI(base_url=f"http://{svc['spec']['clusterIP']}:{port}/v1", api_key="none")
        reply = client.completions.create(model=NAME, prompt="Describe the pets.", max_tokens=2)
        assert reply.usage is not None and reply.usage.completion_tokens > 0
    finally:
        platform.kubectl("delete", "inferencedeployment", NAME, "-n", TEAM, "--wait=true")
        platform.kubectl("delete", "modelversion", VERSION, "-n", TEAM, "--wait=true")

        def gone() -> bool | None:
            return not platform.items("pods", TEAM, f"{LABEL_IDEP}={NAME}") or None

        wait_for("the cached deployment's pods gone", gone, 180)
