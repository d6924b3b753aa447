"""Model Garden installed on a real cluster as a user installs it, for the end-to-end tests.

``install`` does what docs/quickstart-kind.md tells a user: a namespace for the team, `helm
install` of charts/model-garden with the CPU profile, then data on the artifacts claim. The
cluster is either the harness node (tests/harness/node.py: it has no storage provisioner, so a
hostPath PersistentVolume is made first, owned by uid 1000 because hostPath ignores fsGroup) or
any cluster a kubeconfig names (kind, through scripts/e2e-kind). The base model and the datasets
are written onto the claim by a Job running the runtime image itself (no registry, no Hub here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from harness.envtest import REPO
from harness.tools import tool

CHART = REPO / "charts" / "model-garden"
SYSTEM = "model-garden-system"
TEAM = "ml-team"
CLAIM = "model-garden-artifacts"
RELEASE = "mg"
RUNTIME_IMAGE = "ghcr.io/model-garden/runtime-cpu:0.1.0"
VALUES = (CHART / "values-cpu.yaml", Path(__file__).with_name("values-node.yaml"))
BASE_URI = f"pvc://{CLAIM}/base/tiny"
DATASET_URI = f"pvc://{CLAIM}/datasets/pets.jsonl"
BROKEN_DATASET_LINE = 4
BROKEN_DATASET_URI = f"pvc://{CLAIM}/datasets/broken.jsonl"
API = "modelgarden.dev/v1alpha1"
# The restricted Pod Security profile, as every Model Garden pod has it.
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
# What the seed Job runs: the demo's tiny model and learnable rows, and a dataset whose 4th line
# is not JSON (the malformed-dataset fault).
SEED_SCRIPT = f"""
import json, pathlib
from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.demo.tiny_model import main
main(["/data/base/tiny"])
rows = alpaca_rows(240)
write_jsonl("/data/datasets/pets.jsonl", rows)
lines = [json.dumps(r) for r in rows[:8]]
lines[{BROKEN_DATASET_LINE - 1}] = '{{"instruction": "Describe the pets.", "input": '
pathlib.Path("/data/datasets/broken.jsonl").write_text("\\n".join(lines) + "\\n")
print("seeded")
"""

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 1) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {str(last)[:1500]})")


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


@dataclass
class Platform:
    """The installed platform and the few verbs the tests need, all through kubectl and helm."""

    kubeconfig: Path
    workdir: Path
    timings: dict[str, float] = field(default_factory=dict)
    installed: bool = False

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        kubectl = tool("MODEL_GARDEN_KUBE_TOOLS", "scripts/fetch-kube-tools.sh", "kubectl")
        proc = subprocess.run(
            [str(kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        if check and proc.returncode:
            raise AssertionError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def helm(self, *args: str, timeout: float = 600) -> str:
        helm = tool("MODEL_GARDEN_KUBE_TOOLS", "scripts/fetch-kube-tools.sh", "helm")
        proc = subprocess.run(
            [str(helm), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode:
            raise AssertionError(f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def mg(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """``model-garden ARGS --namespace ml-team`` as a user of this cluster runs it (its
        kubeconfig, no CLI config of this machine)."""
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "MODEL_GARDEN_CONFIG": str(self.workdir / "mg-config.yaml"),
        }
        cli = Path(sys.executable).with_name("model-garden")
        return subprocess.run(
            [str(cli), *args, "--namespace", TEAM],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def apply(self, *manifests: dict[str, Any]) -> None:
        doc = {"apiVersion": "v1", "kind": "List", "items": list(manifests)}
        self.kubectl("apply", "-f", "-", input=json.dumps(doc))

    def get(self, kind: str, name: str, namespace: str = TEAM) -> dict[str, Any] | None:
        out = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def items(self, kind: str, namespace: str = TEAM, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        out = self.kubectl(*args, *(["-l", selector] if selector else []))
        return list(json.loads(out.stdout)["items"])

    def timed(self, name: str, start: float) -> None:
        self.timings[name] = round(time.monotonic() - start, 1)
        print(f"[e2e] {name}: {self.timings[name]}s", flush=True)

    def operator_pods(self) -> list[dict[str, Any]]:
        return self.items("pods", SYSTEM, "app.kubernetes.io/component=operator")

    def run_job(self, name: str, script: str, timeout: float = 300) -> str:
        """Run ``python -c script`` in the runtime image with the claim at /data; its log."""
        self.apply(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": name, "namespace": TEAM},
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "securityContext": RESTRICTED_POD,
                            "containers": [
                                {
                                    "name": "main",
                                    "image": RUNTIME_IMAGE,
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": ["python", "-c", script],
                                    "env": [{"name": "HOME", "value": "/tmp"}],
                                    "securityContext": RESTRICTED_CONTAINER,
                                    "volumeMounts": [
                                        {"name": "data", "mountPath": "/data"},
                                        {"name": "tmp", "mountPath": "/tmp"},
                                    ],
                                }
                            ],
                            "volumes": [
                                {"name": "data", "persistentVolumeClaim": {"claimName": CLAIM}},
                                {"name": "tmp", "emptyDir": {}},
                            ],
                        }
                    },
                },
            }
        )

        def finished() -> dict[str, Any] | None:
            job = self.get("job", name) or {}
            status = job.get("status") or {}
            return job if status.get("succeeded") or status.get("failed") else None

        job = wait_for(f"job {name}", finished, timeout)
        log = self.kubectl("logs", f"job/{name}", "-n", TEAM, check=False).stdout
        assert job["status"].get("succeeded"), f"job {name} failed:\n{log[-3000:]}"
        self.kubectl("delete", "job", name, "-n", TEAM, "--wait=true")
        return log


def hostpath_volume(
    path: Path, name: str = "mg-node-artifacts", mode: str = "ReadWriteOnce", size: str = "5Gi"
) -> dict[str, Any]:
    """A PersistentVolume on the node's disk, owned by the pods' uid (hostPath has no fsGroup)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, 1000, 1000)
    path.chmod(0o770)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": [mode],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(path), "type": "Directory"},
        },
    }


def label_namespaces_by_name(platform: Platform, *namespaces: str) -> None:
    """Before Kubernetes 1.21 namespaces lack ``kubernetes.io/metadata.name``, which the
    InferenceDeployments' NetworkPolicies select the operator's namespace by (docs/chart.md)."""
    version = json.loads(platform.kubectl("version", "-o", "json").stdout)["serverVersion"]
    if (int(version["major"]), int(version["minor"].rstrip("+"))) >= (1, 21):
        return
    for ns in namespaces:
        platform.kubectl(
            "label", "namespace", ns, f"kubernetes.io/metadata.name={ns}", "--overwrite"
        )


GRID_SECRET = "grid-credentials"


def provider_values(url: str, token: str) -> tuple[dict[str, Any], list[str]]:
    """The Secret with a live provider's key and the chart values that use it (the way
    docs/carbon.md tells an admin): credentials as files, a zone for the tests' country."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": GRID_SECRET, "namespace": SYSTEM},
        "stringData": {"apiKey": token},
    }
    provider = {
        "name": "electricitymaps",
        "url": url,
        "existingSecret": GRID_SECRET,
        "zones": {"FRA": "FR"},
        "cacheSeconds": 0,
    }
    return secret, ["--set-json", f"carbon.provider={json.dumps(provider)}"]


def install(platform: Platform, hostpath: Path | None, grid: tuple[str, str] | None = None) -> None:
    """Namespace, storage, `helm install` (CPU profile), operator Ready, data on the claim.
    ``grid``: (URL, token) of a live intensity provider the operator reads, or None."""
    t = time.monotonic()
    platform.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYSTEM}},
        *([hostpath_volume(hostpath)] if hostpath is not None else []),
    )
    values = [arg for v in VALUES for arg in ("-f", str(v))]
    if grid is not None:
        secret, flags = provider_values(*grid)
        platform.apply(secret)
        values += flags
    # --server-side=false: Kubernetes 1.20 has no CEL, see docs/chart.md.
    # No --wait: a claim of a WaitForFirstConsumer class (kind's) binds only once a pod uses it.
    platform.helm("install", RELEASE, str(CHART), "-n", SYSTEM, "--create-namespace", *values,
                  "--server-side=false")  # fmt: skip
    platform.kubectl("rollout", "status", f"deployment/{RELEASE}-model-garden-operator", "-n",
                     SYSTEM, "--timeout=300s", timeout=320)  # fmt: skip
    platform.installed = True
    label_namespaces_by_name(platform, TEAM, SYSTEM)
    platform.timed("helm install (operator Ready)", t)
    t = time.monotonic()
    assert "seeded" in platform.run_job("seed", SEED_SCRIPT)
    platform.timed("data on the claim", t)


def uninstall(platform: Platform) -> None:
    """`helm uninstall` (once): the operator goes; claims and CRDs stay, as the chart says."""
    if platform.installed:
        platform.helm("uninstall", RELEASE, "-n", SYSTEM, "--wait", "--timeout=2m")
        platform.installed = False
