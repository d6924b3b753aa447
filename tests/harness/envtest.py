"""A real Kubernetes control plane for tests: etcd + kube-apiserver + kube-controller-manager 1.20.

Built from Debian's source by scripts/build-envtest.sh (cached outside the checkout). Token
authentication and RBAC are on, so tests can act as a ServiceAccount with only the RBAC we ship.
Alone it has no scheduler or kubelet: pods stay Pending and the fast tests play the kubelet by
writing status; tests/harness/node.py starts it with ``node=True`` (listening on the node's
address, so pods reach it through the ``kubernetes`` Service, and with the ServiceAccount
admission plugin, so pods get their token) and adds a real node. Every process is started in its own session with a parent-death signal, and stopped (process
group, SIGTERM then SIGKILL) when the fixture ends, a test fails or pytest is interrupted.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KUBE_VERSION = "1.20.2"
ENVTEST_DIR_ENV = "MODEL_GARDEN_ENVTEST_DIR"
REPO = Path(__file__).resolve().parents[2]


def envtest_dir() -> Path:
    """Where the binaries are: $MODEL_GARDEN_ENVTEST_DIR, else the build script's cache."""
    configured = os.environ.get(ENVTEST_DIR_ENV)
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("MODEL_GARDEN_CACHE", Path.home() / ".cache/model-garden"))
    return cache / "envtest" / f"kubernetes-{KUBE_VERSION}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """preexec: own process group, and SIGKILL if the test process dies (no leaked servers)."""
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone within ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@dataclass
class KubeEnv:
    """A running control plane and how to talk to it."""

    workdir: Path
    server: str
    admin_token: str
    kubeconfig: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)
    _api_client: Any = None

    @property
    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient authenticated as cluster admin."""
        if self._api_client is None:
            from kubernetes import config

            self._api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        return self._api_client

    def token_kubeconfig(self, token: str, name: str = "user") -> Path:
        """A kubeconfig that authenticates with ``token`` (e.g. a ServiceAccount's)."""
        path = self.workdir / f"kubeconfig-{name}-{secrets.token_hex(4)}"
        write_kubeconfig(path, self.server, token, name)
        return path

    def service_account_token(self, namespace: str, name: str, timeout: float = 60) -> str:
        """The token of a ServiceAccount (created if missing) from the Secret the controller makes."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        core = client.CoreV1Api(self.api_client)
        with contextlib.suppress(ApiException):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        with contextlib.suppress(ApiException):
            core.create_namespaced_service_account(
                namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for secret in core.list_namespaced_secret(namespace).items:
                annotations = secret.metadata.annotations or {}
                if (
                    secret.type == "kubernetes.io/service-account-token"
                    and annotations.get("kubernetes.io/service-account.name") == name
                    and secret.data
                    and "token" in secret.data
                ):
                    return base64.b64decode(secret.data["token"]).decode()
            time.sleep(0.5)
        raise TimeoutError(f"no token Secret for ServiceAccount {namespace}/{name}")

    def restart_apiserver(self, down_for: float = 3.0, timeout: float = 90) -> None:
        """Stop kube-apiserver, wait ``down_for`` seconds, start it again with the same flags
        (same port, certificates, keys and etcd: clients see an outage, not a new cluster)."""
        stop_process(self.processes.pop("kube-apiserver"))
        time.sleep(down_for)
        _spawn(self, "kube-apiserver", self.argv["kube-apiserver"], append=True)
        _wait_ready(self, timeout)

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            stop_process(proc)
        self.processes.clear()

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                log = self.workdir / f"{name}.log"
                raise RuntimeError(f"{name} exited {proc.returncode}: {log.read_text()[-3000:]}")


def write_kubeconfig(path: Path, server: str, token: str, user: str) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "envtest", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": user}}],
        "current-context": "envtest",
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


def _spawn(env: KubeEnv, name: str, argv: list[str], append: bool = False) -> None:
    log = (env.workdir / f"{name}.log").open("ab" if append else "wb")
    env.argv[name] = argv
    env.processes[name] = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )


def _wait_ready(env: KubeEnv, timeout: float) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        env.check_alive()
        request = urllib.request.Request(
            f"{env.server}/readyz", headers={"Authorization": f"Bearer {env.admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, context=ctx, timeout=2) as resp:
                if resp.status == 200:
                    return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.3)
    raise TimeoutError(f"kube-apiserver not ready in {timeout}s: {last}")


def start(
    workdir: Path, controller_manager: bool = True, timeout: float = 90, node_ip: str | None = None
) -> KubeEnv:
    """Start the control plane in ``workdir``; stops what it started if anything fails.

    ``node_ip``: serve on that address (it must exist) instead of loopback, advertise it as the
    ``kubernetes`` Service's endpoint and admit pods with their ServiceAccount token — what a
    real node's pods need. Without it pods get no token (no token controller race to wait for).
    """
    bins = envtest_dir()
    apiserver = bins / "kube-apiserver"
    kcm = bins / "kube-controller-manager"
    etcd = shutil.which("etcd")
    missing = [str(p) for p in (apiserver, kcm) if not p.exists()] + ([] if etcd else ["etcd"])
    if missing:
        raise FileNotFoundError(f"missing {missing}: run scripts/build-envtest.sh")
    workdir.mkdir(parents=True, exist_ok=True)
    sa_key = workdir / "sa.key"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True
    )
    admin_token = secrets.token_hex(16)
    (workdir / "tokens.csv").write_text(
        f'{admin_token},admin,admin-uid,"system:masters"\n', encoding="utf-8"
    )
    port = free_port()
    address = node_ip or "127.0.0.1"
    env = KubeEnv(
        workdir=workdir,
        server=f"https://{address}:{port}",
        admin_token=admin_token,
        kubeconfig=workdir / "kubeconfig",
    )
    write_kubeconfig(env.kubeconfig, env.server, admin_token, "admin")
    try:
        etcd_client, etcd_peer = free_port(), free_port()
        _spawn(
            env,
            "etcd",
            [
                str(etcd),
                "--data-dir",
                str(workdir / "etcd"),
                "--name",
                "envtest",
                "--listen-client-urls",
                f"http://127.0.0.1:{etcd_client}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{etcd_client}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{etcd_peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{etcd_peer}",
                "--initial-cluster",
                f"envtest=http://127.0.0.1:{etcd_peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes",
                str(2 << 30),
            ],
        )
        _spawn(
            env,
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers=http://127.0.0.1:{etcd_client}",
                f"--secure-port={port}",
                f"--bind-address={address}",
                f"--advertise-address={address}",
                f"--cert-dir={workdir / 'certs'}",
                f"--token-auth-file={workdir / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                *([] if node_ip else ["--disable-admission-plugins=ServiceAccount"]),
                "--enable-priority-and-fairness=false",
                "--logtostderr=true",
                "--v=1",
            ],
        )
        _wait_ready(env, timeout)
        if controller_manager:
            _spawn(
                env,
                "kube-controller-manager",
                [
                    str(kcm),
                    f"--kubeconfig={env.kubeconfig}",
                    "--controllers=*",
                    f"--service-account-private-key-file={sa_key}",
                    f"--root-ca-file={workdir / 'certs' / 'apiserver.crt'}",
                    "--leader-elect=false",
                    "--port=0",
                    "--secure-port=0",
                    "--use-service-account-credentials=false",
                    "--concurrent-gc-syncs=5",
                    "--logtostderr=true",
                    "--v=1",
                ],
            )
            time.sleep(0.5)
            env.check_alive()
    except BaseException:
        env.stop()
        raise
    return env


@contextlib.contextmanager
def running(workdir: Path, controller_manager: bool = True) -> Iterator[KubeEnv]:
    """The control plane for the duration of the ``with`` block; always stopped afterwards."""
    env = start(workdir, controller_manager=controller_manager)
    try:
        yield env
    finally:
        env.stop()
