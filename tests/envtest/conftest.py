"""Session fixtures: one real control plane and the CRDs installed on it, shared by envtest tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import envtest
from model_garden.api.crdgen import all_crds, strip_cel


@pytest.fixture(scope="session")
def kube_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[envtest.KubeEnv]:
    """etcd + kube-apiserver + kube-controller-manager on free loopback ports."""
    with envtest.running(tmp_path_factory.mktemp("envtest")) as env:
        yield env


def install_crds(api_client: Any, timeout: float = 30) -> list[str]:
    """Create (or replace) the CRDs without CEL rules and wait until each is Established."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    ext = client.ApiextensionsV1Api(api_client)
    names = []
    for crd in all_crds():
        body = strip_cel(crd)
        name = body["metadata"]["name"]
        names.append(name)
        try:
            ext.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            current = ext.read_custom_resource_definition(name)
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, body)
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            conds = ext.read_custom_resource_definition(name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conds):
                pending.discard(name)
        time.sleep(0.2)
    if pending:
        raise TimeoutError(f"CRDs not Established: {sorted(pending)}")
    return names


@pytest.fixture(scope="session")
def crds_installed(kube_env: envtest.KubeEnv) -> list[str]:
    """The three CRDs, Established on the envtest server (CEL stripped: 1.20 has no CEL)."""
    return install_crds(kube_env.api_client)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return envtest.REPO
