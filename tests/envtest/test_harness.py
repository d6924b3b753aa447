"""The harness itself: the control plane answers, RBAC is enforced, controllers run, nothing leaks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from harness import envtest

pytestmark = pytest.mark.envtest


def test_admin_can_list_namespaces(kube_env: envtest.KubeEnv) -> None:
    names = {
        ns.metadata.name for ns in client.CoreV1Api(kube_env.api_client).list_namespace().items
    }
    assert {"default", "kube-system"} <= names


def test_rbac_denies_a_service_account_without_bindings(kube_env: envtest.KubeEnv) -> None:
    token = kube_env.service_account_token("harness", "nobody")
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(kube_env.token_kubeconfig(token, "nobody")))
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).list_namespaced_config_map("harness")
    assert err.value.status == 403


def test_controller_manager_garbage_collects_owned_objects(kube_env: envtest.KubeEnv) -> None:
    core = client.CoreV1Api(kube_env.api_client)
    owner = core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="gc-owner"))
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="gc-owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        "default",
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="gc-child", owner_references=[ref])),
    )
    core.delete_namespaced_config_map("gc-owner", "default")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_config_map("gc-child", "default")
        except ApiException as exc:
            assert exc.status == 404
            return
        time.sleep(0.3)
    pytest.fail("the child ConfigMap was not garbage-collected")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_no_process_outlives_an_interrupted_test_process(tmp_path: Path) -> None:
    """Kill -9 the process that started a control plane: its servers must die with it."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = {[str(envtest.REPO / "tests"), str(envtest.REPO / "operator")]!r}
        from harness import envtest
        env = envtest.start(__import__('pathlib').Path({str(tmp_path)!r}), controller_manager=False)
        print(' '.join(str(p.pid) for p in env.processes.values()), flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "etcd or kube-apiserver outlived its parent"


def test_stop_ends_every_process(tmp_path: Path) -> None:
    env = envtest.start(tmp_path, controller_manager=False)
    procs = list(env.processes.values())
    env.stop()
    assert all(p.poll() is not None for p in procs)
