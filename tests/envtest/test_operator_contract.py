"""Contract: the pod template the operator writes runs the real trainer, and its result comes back.

The Job's pod template is executed as a local process, as a kubelet would run it: its command,
args and env, and **only** that env plus what the image and the container runtime provide
(PATH, HOME, HOSTNAME, the image's PYTHONPATH): nothing leaks in from the test's environment.
``secretKeyRef`` values are read from the real Secret on the API server (a missing Secret or key
fails, as CreateContainerConfigError would). ConfigMap, PVC and emptyDir volumes are mapped to
temporary directories (mount paths in the mounted config are mapped the same way). The base
model is a Hub id with a token Secret; the Hub is unreachable here, so it is served from the
pod's own Hub cache (its emptyDir), as a mirror would. The trainer trains the tiny model for a
few steps, its real termination message is written back into the Pod's status, and the
operator creates the ModelVersion from it.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from envtest.test_operator import API, Cluster, in_ns, operator_settings, wait_for
from harness.envtest import free_port
from model_garden.api.contracts import TrainingResult
from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.operator.runner import OperatorThread, load_client
from model_garden.runtime import SOURCE_ROOT, runtime_python

pytestmark = [pytest.mark.envtest, pytest.mark.ml]

HF_TOKEN_VALUE = "hf_contract_test_token"
HUB_ID = "contract/tiny"
HUB_COMMIT = "0" * 40


def image_env(hostname: str) -> dict[str, str]:
    """What the trainer image and the container runtime set before the container's own env."""
    return {
        "PATH": f"{Path(runtime_python()).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/",
        "HOSTNAME": hostname,
        "PYTHONPATH": str(SOURCE_ROOT),  # the image has model_garden installed
    }


def hub_cache(hf_home: Path, repo_id: str, model_dir: Path) -> None:
    """Lay ``model_dir`` out as a Hub cache entry of ``repo_id`` at revision main."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / HUB_COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(HUB_COMMIT, encoding="utf-8")


class LocalKubelet:
    """Runs one pod template as a process, with volumes as directories under ``root``."""

    def __init__(
        self,
        root: Path,
        claims: dict[str, Path],
        config_maps: dict[str, dict[str, str]],
        cluster: Cluster,
        namespace: str,
    ) -> None:
        self.root = root
        self.claims = claims
        self.config_maps = config_maps
        self.cluster = cluster
        self.namespace = namespace
        self.mounts: dict[str, Path] = {}

    def secret_value(self, name: str, key: str) -> str:
        """A ``secretKeyRef``: read from the API server, as the kubelet does."""
        path = f"/api/v1/namespaces/{self.namespace}/secrets/{name}"
        data = self.cluster.x._call("GET", path).get("data") or {}
        if key not in data:
            raise AssertionError(f"CreateContainerConfigError: no key {key} in Secret {name}")
        return base64.b64decode(data[key]).decode("utf-8")

    def _volume_dir(self, volume: dict[str, Any]) -> Path:
        if "persistentVolumeClaim" in volume:
            return self.claims[volume["persistentVolumeClaim"]["claimName"]]
        target = self.root / "volumes" / volume["name"]
        target.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            for key, text in self.config_maps[volume["configMap"]["name"]].items():
                (target / key).write_text(text, encoding="utf-8")
        elif "emptyDir" not in volume:
            raise AssertionError(f"unexpected volume type in {volume}")
        return target

    def map_path(self, text: str) -> str:
        """Container paths -> host paths, in one pass, only where a whole mount path starts."""
        if not self.mounts:
            return text
        alternatives = "|".join(re.escape(m) for m in sorted(self.mounts, key=len, reverse=True))
        pattern = re.compile(rf'(?<![\w./-])({alternatives})(?=/|"|$|\s)')
        return pattern.sub(lambda m: str(self.mounts[m.group(1)]), text)

    def volume(self, name: str) -> Path:
        return self._volume_dir({"name": name, "emptyDir": {}})

    def run(
        self, pod_spec: dict[str, Any], hostname: str, timeout: float = 600
    ) -> tuple[int, str, dict[str, str]]:
        (container,) = pod_spec["containers"]
        volumes = {v["name"]: self._volume_dir(v) for v in pod_spec["volumes"]}
        for mount in container["volumeMounts"]:
            target = volumes[mount["name"]] / mount.get("subPath", "")
            if not target.exists():  # as the kubelet does for a missing subPath
                target.mkdir(parents=True)
            self.mounts[mount["mountPath"]] = target
        termination = self.root / "termination-log"
        termination.touch()
        self.mounts[container["terminationMessagePath"]] = termination
        # A mounted file is read by path: map the paths inside the ConfigMap files too.
        for mount in container["volumeMounts"]:
            volume = next(v for v in pod_spec["volumes"] if v["name"] == mount["name"])
            if "configMap" in volume:
                for path in volumes[mount["name"]].iterdir():
                    path.write_text(
                        self.map_path(path.read_text(encoding="utf-8")), encoding="utf-8"
                    )
        env = image_env(hostname)  # and then the container's env, nothing else
        for var in container.get("env", []):
            if "value" in var:
                env[var["name"]] = self.map_path(var["value"])
            else:
                ref = var["valueFrom"]["secretKeyRef"]
                env[var["name"]] = self.secret_value(ref["name"], ref["key"])
        command = [runtime_python() if part == "python" else part for part in container["command"]]
        argv = command + [self.map_path(a) for a in container.get("args", [])]
        log = (self.root / "container.log").open("w", encoding="utf-8")
        proc = subprocess.run(
            argv,
            env=env,
            cwd=self.mounts.get("/tmp", self.root),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        return proc.returncode, termination.read_text(encoding="utf-8"), env


def test_job_pod_template_runs_the_real_trainer_and_its_result_comes_back(
    kube_env: Any, crds_installed: list[str], tiny_model: Path, tmp_path: Path
) -> None:
    admin = Cluster(kube_env.api_client)
    progress_port = free_port()
    op = OperatorThread(load_client(kube_env.kubeconfig), operator_settings(progress_port)).start()
    try:
        ns = admin.namespace()
        token = base64.b64encode(HF_TOKEN_VALUE.encode()).decode()
        admin.x._call(
            "POST",
            f"/api/v1/namespaces/{ns}/secrets",
            {"metadata": {"name": "hf"}, "type": "Opaque", "data": {"token": token}},
        )
        spec = {
            "baseModel": {"hub": {"id": HUB_ID, "tokenSecret": {"name": "hf", "key": "token"}}},
            "dataset": {"uri": "pvc://data/pets.jsonl", "maxSeqLength": 128, "evalSplit": "0.1"},
            "method": {"type": "lora", "lora": {"rank": 4, "alpha": 8, "dropout": "0"}},
            "hyperparameters": {"maxSteps": 4, "batchSize": 4, "learningRate": "1e-3"},
            "output": {"model": "pets", "storage": "pvc://artifacts"},
            "checkpointing": {"everySteps": 2},
            "resources": {"cpu": "1", "memory": "2Gi"},
            "backend": "transformers",
            "backoffLimit": 0,
        }
        admin.create(
            in_ns(
                {
                    "apiVersion": API,
                    "kind": "FineTuneJob",
                    "metadata": {"name": "pets"},
                    "spec": spec,
                },
                ns,
            )
        )
        job = wait_for("Job", lambda: admin.get("batch/v1", "Job", ns, "pets-train"))
        cm = wait_for("ConfigMap", lambda: admin.get("v1", "ConfigMap", ns, "pets-train-config"))
        (pod,) = wait_for("pod", lambda: admin.pods_of(ns, "pets-train"), timeout=30)

        claims = {name: tmp_path / "claims" / name for name in ("data", "artifacts")}
        for path in claims.values():
            path.mkdir(parents=True)
        write_jsonl(claims["data"] / "pets.jsonl", alpaca_rows(60, seed=0))
        kubelet = LocalKubelet(
            tmp_path / "pod",
            claims,
            config_maps={cm["metadata"]["name"]: cm["data"]},
            cluster=admin,
            namespace=ns,
        )
        hub_cache(kubelet.volume("cache") / "huggingface", HUB_ID, tiny_model)
        admin.play_kubelet(ns, pod, "Running")
        code, message, env = kubelet.run(job["spec"]["template"]["spec"], pod["metadata"]["name"])
        assert env["HF_TOKEN"] == HF_TOKEN_VALUE  # from the Secret on the API server
        assert "HF_HUB_OFFLINE" not in env and "MODEL_GARDEN_RUNTIME_PYTHON" not in env
        log = (tmp_path / "pod" / "container.log").read_text(encoding="utf-8")
        assert code == 0, log[-4000:]
        result = TrainingResult.model_validate_json(message)
        assert result.outcome == "Succeeded" and len(message.encode()) <= 4096
        admin.play_kubelet(ns, pod, "Succeeded", exit_code=code, message=message)

        def produced() -> Any:
            ftj = admin.get(API, "FineTuneJob", ns, "pets")
            return ftj if (ftj or {}).get("status", {}).get("modelVersion") else None

        ftj = wait_for("ModelVersion recorded", produced, timeout=30)
        assert ftj["status"]["modelVersion"] == "pets-v1"
        mv = admin.get(API, "ModelVersion", ns, "pets-v1")
        assert mv is not None
        artifact = mv["spec"]["artifact"]
        adapter = next(a for a in result.artifacts if a.kind == "adapter")
        assert artifact["uri"] == adapter.uri and artifact["uri"].startswith(
            f"pvc://artifacts/{ns}/pets/v1"
        )
        assert (
            artifact["digest"] == adapter.digest and artifact["sizeBytes"] == adapter.size_bytes > 0
        )
        host_dir = claims["artifacts"] / artifact["uri"].removeprefix("pvc://artifacts/")
        assert (host_dir / "adapter_config.json").is_file(), sorted(
            p.name for p in host_dir.parent.iterdir()
        )
        assert float(mv["spec"]["trainingCarbon"]["energyKwh"]) >= 0
        assert ftj["status"]["carbon"]["emissionsKg"] == pytest.approx(result.carbon.emissions_kg)
        assert (
            json.loads(cm["data"]["training-config.json"])["runtime"]["artifactUri"]
            == f"pvc://artifacts/{ns}/pets/v1"
        )
    finally:
        op.stop()
