"""A real single-node Kubernetes 1.20 for tests: the envtest control plane plus a node.

On top of tests/harness/envtest.py (etcd, kube-apiserver, kube-controller-manager) this adds
kube-scheduler, containerd + runc (own root/state/socket, CRI with ``restrict_oom_score_adj``
because this VM lacks CAP_SYS_RESOURCE, a locally built pause image), a CNI bridge network
that lives only on this machine, kubelet (cgroupfs, no QoS cgroups) and kube-proxy (iptables).
Binaries: scripts/build-node.sh (cached). Why each setting: ../shared/TOOLCHAIN.md, docs/node.md.

Teardown is explicit and complete (processes, containerd tasks/containers/shims, netns, the
bridge and dummy interface, mounts under our dirs, KUBE-*/CNI-* chains we added, the sysctls
kubelet changed); logs stay in ``Node.logs``. A person runs it with
``python -m harness.node up|down`` from tests/.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import envtest, node_host, node_images
from harness.node_host import NODE_IP, run

# The node is named by its IP: the envtest apiserver reaches kubelets by their Hostname address
# (no --kubelet-preferred-address-types there), and an IP needs no DNS.
NODE_NAME = NODE_IP
NODE_DIR_ENV = "MODEL_GARDEN_NODE_DIR"
STATE_FILE = Path("/tmp/mg-node.json")  # where `up` leaves what `down` must undo
DEFAULT_IMAGES = ("ghcr.io/model-garden/runtime-cpu:0.1.0", "ghcr.io/model-garden/operator:0.1.0")


def cache_root() -> Path:
    return Path(os.environ.get("MODEL_GARDEN_CACHE", Path.home() / ".cache/model-garden")) / "node"


def node_dir() -> Path:
    """kubelet, kube-scheduler, kube-proxy: $MODEL_GARDEN_NODE_DIR, else build-node.sh's cache."""
    configured = os.environ.get(NODE_DIR_ENV)
    if configured:
        return Path(configured)
    return cache_root() / f"kubernetes-{envtest.KUBE_VERSION}"


@dataclass
class Node:
    """A running node; ``stop()`` undoes everything ``start()`` did."""

    workdir: Path
    logs: Path
    containerd_root: Path
    kube: envtest.KubeEnv | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    chains_before: dict[str, list[str]] = field(default_factory=dict)
    pod_logs_before: list[str] = field(default_factory=list)
    dirs_before: list[str] = field(default_factory=list)
    root_lock: Any = None
    stopped: bool = False

    @property
    def socket(self) -> Path:
        return self.workdir / "containerd.sock"

    @property
    def ctr(self) -> list[str]:
        return ["ctr", "--address", str(self.socket), "--namespace", "k8s.io"]

    @property
    def kubeconfig(self) -> Path:
        assert self.kube is not None
        return self.kube.kubeconfig

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=envtest._die_with_parent,
        )

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited {proc.returncode}: {tail}")

    def _phase(self, name: str, start: float) -> None:
        self.timings[name] = round(time.monotonic() - start, 1)

    # --- start -----------------------------------------------------------------------------

    def start(self, images: list[str], timeout: float = 120) -> None:
        bins = node_dir()
        missing = [
            b for b in ("kubelet", "kube-scheduler", "kube-proxy") if not (bins / b).exists()
        ]
        missing += [
            t for t in ("containerd", "ctr", "runc", "conntrack", "podman") if not shutil.which(t)
        ]
        if missing:
            raise FileNotFoundError(
                f"missing {missing}: run scripts/build-node.sh / scripts/bootstrap.sh"
            )
        self.sysctls = node_host.read_sysctls()
        self.chains_before = node_host.iptables_chains()
        self.pod_logs_before = _pod_logs()
        self.dirs_before = node_host.existing_host_dirs()
        t = time.monotonic()
        node_host.add_node_address()  # the API server listens there: pods reach it
        self.kube = envtest.start(self.workdir / "control-plane", node_ip=NODE_IP)
        self._phase("control plane", t)
        t = time.monotonic()
        self._spawn(
            "kube-scheduler",
            [
                str(bins / "kube-scheduler"),
                f"--kubeconfig={self.kube.kubeconfig}",
                "--leader-elect=false",
                "--port=0",
                "--secure-port=0",
                "--logtostderr=true",
                "--v=1",
            ],
        )
        self._start_containerd()
        self._phase("containerd", t)
        t = time.monotonic()
        node_images.import_archive(
            self.ctr, node_images.pause_archive(cache_root()), node_images.PAUSE_IMAGE
        )
        self.timings.update(
            {
                f"import {k}": v
                for k, v in node_images.import_podman_images(
                    self.ctr, images, self.containerd_root / "mg-imported.json", self.workdir
                ).items()
            }
        )
        self._phase("images", t)
        t = time.monotonic()
        self._start_kubelet(bins)
        self._start_kube_proxy(bins)
        self._wait_ready(timeout)
        self._phase("node Ready", t)

    def _start_containerd(self) -> None:
        cni_conf = self.workdir / "cni"
        cni_conf.mkdir()
        (cni_conf / "10-mgnet.conflist").write_text(
            json.dumps(node_host.cni_config(self.workdir / "cni-ipam"), indent=1)
        )
        config = f"""version = 2
root = "{self.containerd_root}"
state = "{self.workdir / "containerd-state"}"
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{self.workdir / "containerd-opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{node_images.PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{node_host.CNI_BIN}"
    conf_dir = "{cni_conf}"
"""
        (self.workdir / "containerd.toml").write_text(config)
        self._spawn("containerd", ["containerd", "--config", str(self.workdir / "containerd.toml")])
        deadline = time.monotonic() + 30
        while run([*self.ctr, "version"], check=False).returncode:
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError("containerd did not answer in 30s")
            time.sleep(0.3)

    def _start_kubelet(self, bins: Path) -> None:
        root = self.workdir / "kubelet"
        root.mkdir()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": envtest.free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": envtest.free_port(),
            # The apiserver has no client certificate for kubelet; kubelet listens only on
            # the node's private address, so logs/exec are allowed without authentication.
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "volumePluginDir": str(root / "volume-plugins"),
            "imageGCHighThresholdPercent": 100,  # never collect the imported images
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "serializeImagePulls": False,
            "clusterDomain": "cluster.local",
            "resolvConf": "/etc/resolv.conf",
        }
        (self.workdir / "kubelet.yaml").write_text(yaml.safe_dump(config))
        assert self.kube is not None
        self._spawn(
            "kubelet",
            [
                str(bins / "kubelet"),
                f"--config={self.workdir / 'kubelet.yaml'}",
                f"--kubeconfig={self.kube.kubeconfig}",
                f"--root-dir={root}",
                f"--cert-dir={root / 'pki'}",
                f"--seccomp-profile-root={root / 'seccomp'}",
                "--container-runtime=remote",
                f"--container-runtime-endpoint=unix://{self.socket}",
                "--runtime-request-timeout=10m",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
                "--logtostderr=true",
                "--v=1",
            ],
        )

    def _start_kube_proxy(self, bins: Path) -> None:
        assert self.kube is not None
        self._spawn(
            "kube-proxy",
            [
                str(bins / "kube-proxy"),
                f"--kubeconfig={self.kube.kubeconfig}",
                "--proxy-mode=iptables",
                f"--hostname-override={NODE_NAME}",
                f"--bind-address={NODE_IP}",
                f"--cluster-cidr={node_host.POD_SUBNET}",
                f"--nodeport-addresses={NODE_IP}/32",
                f"--healthz-bind-address=127.0.0.1:{envtest.free_port()}",
                f"--metrics-bind-address=127.0.0.1:{envtest.free_port()}",
                "--conntrack-max-per-core=0",  # leave the machine's conntrack sysctls alone
                "--conntrack-tcp-timeout-established=0",
                "--conntrack-tcp-timeout-close-wait=0",
                "--logtostderr=true",
                "--v=1",
            ],
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            assert self.kube is not None
            self.kube.check_alive()
            out = self.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
            if out.returncode == 0:
                conds = {
                    c["type"]: c for c in json.loads(out.stdout)["status"].get("conditions", [])
                }
                ready = conds.get("Ready", {})
                if ready.get("status") == "True":
                    return
                last = ready.get("message", "")
            time.sleep(1)
        raise TimeoutError(f"node {NODE_NAME} not Ready in {timeout}s: {last}")

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        tools = os.environ.get("MODEL_GARDEN_KUBE_TOOLS")
        kubectl = str(Path(tools) / "kubectl") if tools else "kubectl"
        proc = subprocess.run(
            [kubectl, f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input,
        )
        if check and proc.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr}")
        return proc

    # --- stop ------------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Undo everything; returns the problems met (empty when all went as planned)."""
        problems: list[str] = []
        if self.stopped:
            return problems
        self.stopped = True

        def step(name: str, fn: Any, *a: Any) -> None:
            try:
                fn(*a)
            except Exception as exc:  # keep tearing down
                problems.append(f"{name}: {exc}")

        step("pods", self._delete_pods)
        for name in ("kube-proxy", "kubelet", "kube-scheduler"):
            proc = self.processes.pop(name, None)
            if proc is not None:
                step(name, envtest.stop_process, proc)
        netns: list[str] = []
        if "containerd" in self.processes and self.processes["containerd"].poll() is None:
            netns = node_host.netns_of_containers(self.ctr)
            step("containers", self._remove_containers)
        proc = self.processes.pop("containerd", None)
        if proc is not None:
            step("containerd", envtest.stop_process, proc)
        step("shims", self._kill_leftovers)
        for path in netns:
            if Path(path).exists():
                name = Path(path).name
                if run(["ip", "netns", "delete", name], check=False).returncode:
                    node_host.unmount_under(Path(path))
                    Path(path).unlink(missing_ok=True)
        if self.kube is not None:
            step("control plane", self.kube.stop)
        bins = node_dir()
        if (bins / "kube-proxy").exists():
            run([str(bins / "kube-proxy"), "--cleanup", "--logtostderr=true"], check=False)
        node_host.remove_new_chains(self.chains_before)
        node_host.delete_links()
        node_host.unmount_under(self.workdir, self.containerd_root)
        for leftover in node_host.mounts_under(self.workdir, self.containerd_root):
            problems.append(f"still mounted: {leftover}")
        node_host.restore_sysctls(self.sysctls)
        for entry in map(Path, set(_pod_logs()) - set(self.pod_logs_before)):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        for left in node_host.remove_new_host_dirs(self.dirs_before):
            problems.append(f"not empty: {left}")
        for result in Path("/var/lib/cni/results").glob(f"{node_host.CNI_NETWORK}-*"):
            result.unlink(missing_ok=True)
        if self.root_lock is not None:
            self.root_lock.close()
            self.root_lock = None
        self._keep_logs()
        if not node_host.mounts_under(self.workdir):
            for child in self.workdir.iterdir():
                if child == self.logs:
                    continue
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink()
            with contextlib.suppress(OSError):
                self.workdir.rmdir()  # empty unless the logs live in it
        return problems

    def _delete_pods(self) -> None:
        """Let kubelet stop every sandbox (CNI DEL, netns removal) before the forced path."""
        if self.kube is None or "kubelet" not in self.processes:
            return
        self.kubectl(
            "delete",
            "pods",
            "--all",
            "--all-namespaces",
            "--grace-period=0",
            "--force",
            "--wait=false",
            check=False,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            tasks = run([*self.ctr, "tasks", "ls", "-q"], check=False).stdout.split()
            if not tasks:
                return
            time.sleep(1)

    def _remove_containers(self) -> None:
        for task in run([*self.ctr, "tasks", "ls", "-q"], check=False).stdout.split():
            run([*self.ctr, "tasks", "kill", "-s", "SIGKILL", task], check=False)
        time.sleep(0.5)
        for task in run([*self.ctr, "tasks", "ls", "-q"], check=False).stdout.split():
            run([*self.ctr, "tasks", "delete", "--force", task], check=False)
        for cid in run([*self.ctr, "containers", "ls", "-q"], check=False).stdout.split():
            run([*self.ctr, "containers", "delete", cid], check=False)

    def _kill_leftovers(self) -> None:
        """containerd shims (and their containers) outlive containerd: kill them by PID."""
        for _ in range(10):
            pids = node_host.processes_mentioning(
                str(self.socket), str(self.workdir / "containerd-state")
            )
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.3)
        raise RuntimeError(f"processes left: {pids}")

    def _keep_logs(self) -> None:
        if self.kube is not None:
            for log in self.kube.workdir.glob("*.log"):
                with contextlib.suppress(OSError):
                    shutil.copy(log, self.logs / log.name)
        (self.logs / "timings.json").write_text(json.dumps(self.timings, indent=1))


def _pod_logs() -> list[str]:
    found = []
    for base in (Path("/var/log/pods"), Path("/var/log/containers")):
        if base.exists():
            found += [str(p) for p in base.iterdir()]
    return found


def _containerd_root(workdir: Path) -> tuple[Path, Any]:
    """The shared cached root (images survive between runs) if free, else a private one."""
    shared = cache_root() / "containerd-root"
    shared.mkdir(parents=True, exist_ok=True)
    lock = (cache_root() / "containerd-root.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return shared, lock
    except OSError:
        lock.close()
        return workdir / "containerd-root", None


def start(images: list[str] | None = None, logs: Path | None = None) -> Node:
    """Start a node; on any failure everything started so far is stopped again."""
    if os.geteuid() != 0:
        raise PermissionError("the test node needs root (namespaces, mounts, iptables)")
    workdir = Path(tempfile.mkdtemp(prefix="mgnode-", dir="/tmp"))
    root, lock = _containerd_root(workdir)
    node = Node(
        workdir=workdir, logs=logs or workdir / "logs", containerd_root=root, root_lock=lock
    )
    node.logs.mkdir(parents=True, exist_ok=True)
    try:
        node.start(list(images if images is not None else DEFAULT_IMAGES))
    except BaseException:
        node.stop()
        raise
    return node


@contextlib.contextmanager
def running(images: list[str] | None = None, logs: Path | None = None) -> Iterator[Node]:
    node = start(images, logs)
    try:
        yield node
    finally:
        node.stop()


def _main(argv: list[str]) -> int:
    """``up``: start and wait (Ctrl-C or ``down`` stops it); ``down``: stop a running ``up``."""
    if argv[:1] == ["down"]:
        if not STATE_FILE.exists():
            print("no node is up", file=sys.stderr)
            return 1
        os.kill(json.loads(STATE_FILE.read_text())["pid"], signal.SIGTERM)
        for _ in range(120):
            if not STATE_FILE.exists():
                return 0
            time.sleep(1)
        print("node did not stop in 120s", file=sys.stderr)
        return 1
    if argv[:1] != ["up"]:
        print("usage: python -m harness.node up|down", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    node = start()
    try:
        STATE_FILE.write_text(json.dumps({"pid": os.getpid(), "kubeconfig": str(node.kubeconfig)}))
        print(
            f"node Ready: export KUBECONFIG={node.kubeconfig}\nlogs: {node.logs}\ntimings: {node.timings}"
        )
        print("stop with Ctrl-C or `python -m harness.node down`", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        problems = node.stop()
        STATE_FILE.unlink(missing_ok=True)
        print(
            f"stopped; logs kept in {node.logs}" + (f"; problems: {problems}" if problems else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
