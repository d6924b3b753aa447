"""The cluster source on the real kube-apiserver (envtest): RBAC and token auth are on.

Two ServiceAccounts in ``team-a``: ``viewer`` (a Role to get/list/watch the three kinds) and
``editor`` (the same plus writes and the scale subresource); neither may touch ``team-b``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from envtest.conftest import install_crds
from harness import envtest
from model_garden.operator.executor import Executor
from model_garden.operator.plan import ObjectRef
from model_garden.readapi import ReadApiSettings, create_app
from model_garden.readapi.cluster import ClusterSource

from .fill import ftj, idep, job_status, mv
from .live import serve

pytestmark = pytest.mark.envtest
API = "modelgarden.dev/v1alpha1"
V1 = "/api/v1"
KINDS = ["finetunejobs", "modelversions", "inferencedeployments"]


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[envtest.KubeEnv]:
    with envtest.running(tmp_path_factory.mktemp("envtest-readapi")) as env:
        install_crds(env.api_client)
        yield env


def _role(name: str, verbs: list[str], scale: bool) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [
        {"apiGroups": ["modelgarden.dev"], "resources": KINDS, "verbs": verbs}
    ]
    if scale:
        rules.append(
            {
                "apiGroups": ["modelgarden.dev"],
                "resources": ["inferencedeployments/scale"],
                "verbs": ["get", "patch", "update"],
            }
        )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": "team-a"},
        "rules": rules,
    }


def _binding(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": "team-a"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "team-a"}],
    }


def _in(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "namespace": namespace}}


@pytest.fixture(scope="module")
def world(kube: envtest.KubeEnv) -> dict[str, Any]:
    admin = Executor(kube.api_client)
    tokens = {
        "viewer": kube.service_account_token("team-a", "viewer"),
        "editor": kube.service_account_token("team-a", "editor"),
    }
    kube.service_account_token("team-b", "someone")  # makes namespace team-b
    admin.call(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles",
        _role("viewer", ["get", "list", "watch"], scale=False),
    )
    admin.call(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles",
        _role(
            "editor", ["get", "list", "watch", "create", "patch", "update", "delete"], scale=True
        ),
    )
    for name in tokens:
        admin.call(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
            _binding(name),
        )
    for ns in ("team-a", "team-b"):
        path = f"/apis/{API}/namespaces/{ns}"
        admin.call(
            "POST", f"{path}/finetunejobs", _in(ftj("pets-a", model="pets", experiment="x"), ns)
        )
        ref = ObjectRef(API, "FineTuneJob", ns, "pets-a")
        admin.merge_patch(
            ref, {"status": job_status("Succeeded", loss=0.8, kg=0.002, kwh=0.04)}, "status"
        )
        admin.call("POST", f"{path}/modelversions", _in(mv("pets", 1, job="pets-a"), ns))
        admin.call("POST", f"{path}/inferencedeployments", _in(idep("pets", "pets-v1"), ns))
    return {"admin": admin, "tokens": tokens}


class Counting:
    """Records the paths the cache's client requests (the watch's included)."""

    def __init__(self, api_client: Any) -> None:
        self.paths: list[str] = []
        original = api_client.call_api

        def call_api(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            self.paths.append(f"{method} {url}")
            return original(method, url, *args, **kwargs)

        api_client.call_api = call_api


@pytest.fixture(scope="module")
def cluster(
    kube: envtest.KubeEnv, world: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ClusterSource, Counting, Path]]:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kube.kubeconfig))
    counting = Counting(api)
    static = tmp_path_factory.mktemp("nostatic")
    source = ClusterSource(api, access_ttl=30, watch_seconds=5)
    source.start()
    assert source.wait_synced(30)
    try:
        yield source, counting, static
    finally:
        source.stop()


def bearer(world: dict[str, Any], who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world['tokens'][who]}"}


@pytest.fixture(scope="module")
def client(cluster: tuple[ClusterSource, Counting, Path]) -> Iterator[TestClient]:
    source, _, static = cluster
    app = create_app(source, ReadApiSettings(static_dir=static))
    app.router.lifespan_context = _no_lifespan  # the module's source is started once, above
    with TestClient(app) as client:
        yield client


from contextlib import asynccontextmanager  # noqa: E402


@asynccontextmanager
async def _no_lifespan(app: Any) -> Any:
    yield


def names(reply: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in reply["items"]]


def test_lists_come_from_the_cache_filtered_per_caller(
    client: TestClient, cluster: tuple[ClusterSource, Counting, Path], world: dict[str, Any]
) -> None:
    _, counting, _ = cluster
    before = len(counting.paths)
    for _ in range(5):
        jobs = client.get(f"{V1}/finetunejobs", headers=bearer(world, "viewer")).json()
        assert names(jobs) == [("team-a", "pets-a")] and jobs["total"] == 1
    assert names(client.get(f"{V1}/modelversions", headers=bearer(world, "viewer")).json()) == [
        ("team-a", "pets-v1")
    ]
    # the cache's client made no list request for these (its watches may have re-opened)
    lists = [p for p in counting.paths[before:] if "watch=" not in p and "modelgarden.dev" in p]
    assert lists == []
    assert sum("finetunejobs" in p and "watch=" not in p for p in counting.paths) == 1  # the list
    assert any("finetunejobs" in p and "watch=" in p for p in counting.paths)  # then watches
    job = client.get(f"{V1}/finetunejobs/team-a/pets-a", headers=bearer(world, "viewer")).json()
    assert job["status"]["carbon"]["emissionsKg"] == 0.002


def test_a_namespace_the_caller_may_not_list_is_not_shown(
    client: TestClient, world: dict[str, Any]
) -> None:
    headers = bearer(world, "viewer")
    assert client.get(f"{V1}/info", headers=headers).json()["namespaces"] == ["team-a"]
    assert client.get(f"{V1}/finetunejobs?namespace=team-b", headers=headers).json()["items"] == []
    assert client.get(f"{V1}/finetunejobs/team-b/pets-a", headers=headers).status_code == 404
    summary = client.get(f"{V1}/carbon/summary?by=namespace", headers=headers).json()
    assert [r["key"] for r in summary["rows"]] == ["team-a"]


def test_reads_need_a_valid_token(client: TestClient) -> None:
    assert client.get(f"{V1}/finetunejobs").status_code == 401
    bad = client.get(f"{V1}/finetunejobs", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401


def test_read_only_role_is_refused_a_scale_an_editor_scales(
    client: TestClient, world: dict[str, Any]
) -> None:
    url = f"{V1}/inferencedeployments/team-a/pets/scale"
    refused = client.patch(url, json={"replicas": 2}, headers=bearer(world, "viewer"))
    assert refused.status_code == 403, refused.text
    assert "inferencedeployments/scale" in refused.json()["detail"]
    admin: Executor = world["admin"]
    assert (
        admin.get(ObjectRef(API, "InferenceDeployment", "team-a", "pets"))["spec"]["replicas"] == 1
    )  # type: ignore[index]
    done = client.patch(url, json={"replicas": 2}, headers=bearer(world, "editor"))
    assert done.status_code == 200, done.text
    assert done.json()["spec"]["replicas"] == 2
    assert (
        admin.get(ObjectRef(API, "InferenceDeployment", "team-a", "pets"))["spec"]["replicas"] == 2
    )  # type: ignore[index]
    other = client.patch(
        f"{V1}/inferencedeployments/team-b/pets/scale",
        json={"replicas": 3},
        headers=bearer(world, "editor"),
    )
    assert other.status_code == 403


def test_editor_promotes_and_viewer_may_not(client: TestClient, world: dict[str, Any]) -> None:
    url = f"{V1}/modelversions/team-a/pets-v1/promote"
    assert (
        client.post(url, json={"stage": "staging"}, headers=bearer(world, "viewer")).status_code
        == 403
    )
    ok = client.post(url, json={"stage": "staging"}, headers=bearer(world, "editor"))
    assert ok.status_code == 200 and ok.json()["spec"]["stage"] == "staging"


def test_a_status_change_is_streamed_to_who_may_see_it(
    cluster: tuple[ClusterSource, Counting, Path], world: dict[str, Any]
) -> None:
    source, _, static = cluster
    app = create_app(source, ReadApiSettings(static_dir=static, ping_seconds=1))
    app.router.lifespan_context = _no_lifespan
    admin: Executor = world["admin"]
    events: list[dict[str, Any]] = []
    with serve(app) as base, httpx.Client(base_url=base, timeout=20) as http:

        def change_later() -> None:
            deadline = time.monotonic() + 10
            while source.changes.subscribers == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            for ns in ("team-b", "team-a"):  # team-b's change must not reach the viewer
                ref = ObjectRef(API, "FineTuneJob", ns, "pets-a")
                admin.merge_patch(ref, {"status": {"progress": {"step": 42}}}, "status")

        threading.Thread(target=change_later, daemon=True).start()
        with http.stream("GET", f"{V1}/stream", headers=bearer(world, "viewer")) as reply:
            assert reply.status_code == 200
            kind = None
            for line in reply.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind == "change":
                    events.append(json.loads(line.split(":", 1)[1]))
                    break
    assert events and events[0]["namespace"] == "team-a" and events[0]["name"] == "pets-a"
    assert events[0]["kind"] == "FineTuneJob" and events[0]["type"] == "MODIFIED"
    rv = admin.get(ObjectRef(API, "FineTuneJob", "team-a", "pets-a"))["metadata"]["resourceVersion"]  # type: ignore[index]
    assert events[0]["resourceVersion"] == rv


def test_the_cluster_entry_point_serves_callers_their_namespaces(
    kube: envtest.KubeEnv, world: dict[str, Any]
) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "PYTHONUNBUFFERED": "1"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    args = [sys.executable, "-m", "model_garden.readapi", "--cluster", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*args, "--port", str(port)], env=env, stdout=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}{V1}"
    try:
        assert proc.stdout is not None and "cluster" in proc.stdout.readline()
        deadline = time.monotonic() + 30
        while True:
            try:
                reply = httpx.get(
                    f"{base}/finetunejobs", headers=bearer(world, "viewer"), timeout=2
                )
                if reply.status_code == 200 and reply.json()["total"]:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        assert names(reply.json()) == [("team-a", "pets-a")]
        assert (
            httpx.get(f"{base}/info", headers=bearer(world, "viewer")).json()["mode"] == "cluster"
        )
        assert httpx.get(f"{base}/finetunejobs").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_info_answers_without_a_token_and_the_stream_does_not(client: TestClient) -> None:
    info = client.get(f"{V1}/info")
    assert info.status_code == 200  # kubelet probes and the login screen send no token
    assert info.json()["mode"] == "cluster" and info.json()["namespaces"] == []
    assert client.get(f"{V1}/stream").status_code == 401


def test_a_source_watching_one_namespace_lists_only_there(
    kube: envtest.KubeEnv, world: dict[str, Any]
) -> None:
    """The chart's rbac.scope=namespaced: an identity with a Role in team-a only."""
    from kubernetes import config

    admin: Executor = world["admin"]
    token = kube.service_account_token("team-a", "readapi")
    role = _role("readapi", ["get", "list", "watch"], scale=False)
    admin.call("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles", role)
    admin.call(
        "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings",
        _binding("readapi"),
    )  # fmt: skip
    api = config.new_client_from_config(config_file=str(kube.token_kubeconfig(token, "readapi")))
    source = ClusterSource(api, namespaces=["team-a"], watch_seconds=5)
    source.start()
    try:
        assert source.wait_synced(30)
        with TestClient(create_app(source, ReadApiSettings(static_dir=kube.workdir))) as http:
            editor = bearer(world, "editor")
            jobs = http.get(f"{V1}/finetunejobs", headers=editor).json()
            assert names(jobs) == [("team-a", "pets-a")]
            assert http.get(f"{V1}/info", headers=editor).json()["namespaces"] == ["team-a"]
        assert all(count == 1 for count in source.relists.values())
    finally:
        source.stop()
