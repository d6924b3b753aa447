"""The operator in-process against a real kube-apiserver 1.20 + kube-controller-manager.

There is no kubelet: tests play its part by writing Pod status (phase, container states,
termination message); the real Job controller then marks Jobs Complete or Failed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from model_garden.api.contracts import TrainingProgress, TrainingResult
from model_garden.operator.executor import Executor
from model_garden.operator.plan import ObjectRef
from model_garden.operator.runner import OperatorThread, load_client
from model_garden.operator.settings import OperatorSettings

pytestmark = pytest.mark.envtest

API = "modelgarden.dev/v1alpha1"
DIGEST = "sha256:" + "ab" * 32


# --- helpers (shared with test_operator_rbac.py) ----------------------------------------------


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Cluster:
    """Admin-side reads and writes for tests (the same executor the operator uses)."""

    def __init__(self, api_client: Any) -> None:
        self.x = Executor(api_client)

    def namespace(self) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        self.x.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
        return name

    def create(self, obj: dict[str, Any]) -> None:
        self.x.create(obj)

    def get(self, api_version: str, kind: str, ns: str, name: str) -> dict[str, Any] | None:
        return self.x.get(ObjectRef(api_version, kind, ns, name))

    def list(
        self, api_version: str, kind: str, ns: str, selector: str | None = None
    ) -> list[dict[str, Any]]:
        return self.x.list_objects(api_version, kind, ns, selector)

    def patch(
        self, api_version: str, kind: str, ns: str, name: str, patch: dict[str, Any], sub: str = ""
    ) -> None:
        self.x.merge_patch(ObjectRef(api_version, kind, ns, name), patch, subresource=sub)

    def delete(self, api_version: str, kind: str, ns: str, name: str) -> None:
        self.x.delete(ObjectRef(api_version, kind, ns, name))

    def condition(self, obj: dict[str, Any] | None, type: str) -> dict[str, Any] | None:
        for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
            if cond["type"] == type:
                return dict(cond)
        return None

    def pods_of(self, ns: str, job: str) -> list[dict[str, Any]]:
        return self.list("v1", "Pod", ns, f"job-name={job}")

    def play_kubelet(
        self,
        ns: str,
        pod: dict[str, Any],
        phase: str,
        *,
        exit_code: int | None = None,
        reason: str | None = None,
        message: str = "",
        pod_ip: str = "127.0.0.1",
        container: str = "trainer",
    ) -> None:
        """Write the status a kubelet would: Running, or terminated with a message."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if exit_code is None:
            state: dict[str, Any] = {"running": {"startedAt": now}}
        else:
            state = {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                    "message": message,
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
        status = {
            "phase": phase,
            "podIP": pod_ip,
            "startTime": now,
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": container,
                    "ready": exit_code is None,
                    "restartCount": 0,
                    "image": "trainer",
                    "imageID": "trainer@sha256:0",
                    "state": state,
                }
            ],
        }
        self.patch("v1", "Pod", ns, pod["metadata"]["name"], {"status": status}, sub="status")

    def verify(self, ns: str, mv_name: str, size: int = 1234, digest: str = DIGEST) -> None:
        """Play the verification pod of a ModelVersion: it hashed the files to ``digest``."""
        (pod,) = wait_for(
            f"{mv_name} verification pod", lambda: self.pods_of(ns, f"{mv_name}-verify"), timeout=30
        )
        report = json.dumps({"sizeBytes": size, "digest": digest, "files": 3})
        self.play_kubelet(ns, pod, "Succeeded", exit_code=0, message=report, container="verify")

    def orphan(self, ns: str, job: str) -> None:
        """Cut a Job loose from its owner, as if the garbage collector had not reached it yet."""
        self.patch("batch/v1", "Job", ns, job, {"metadata": {"ownerReferences": None}})


def finetunejob(name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "baseModel": {
            "hub": {
                "id": "Qwen/Qwen2.5-0.5B-Instruct",
                "tokenSecret": {"name": "hf", "key": "token"},
            }
        },
        "dataset": {"uri": "pvc://datasets/chat.jsonl"},
        "output": {"model": "chat", "storage": "pvc://artifacts"},
        "resources": {"gpus": 1, "memory": "24Gi", "nodeSelector": {"gpu": "a100"}},
        "backoffLimit": 0,
    }
    body.update(spec)
    return {"apiVersion": API, "kind": "FineTuneJob", "metadata": {"name": name}, "spec": body}


def model_version(
    name: str, model: str, version: int, stage: str = "none", digest: bool = True, **artifact: Any
) -> dict[str, Any]:
    art: dict[str, Any] = {"uri": f"pvc://artifacts/{model}/v{version}", "format": "merged"}
    if digest:
        art.update(digest=DIGEST, sizeBytes=1234)
    art.update(artifact)
    return {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": {"name": name},
        "spec": {"model": model, "version": version, "artifact": art, "stage": stage},
    }


def inference_deployment(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def result_message(**update: Any) -> str:
    result = TrainingResult.model_validate(
        {
            "outcome": "Succeeded",
            "backend": "transformers",
            "metrics": {"trainLoss": 1.25, "evalLoss": 1.5, "steps": 10, "epochs": 1.0},
            "carbon": {"energyKwh": 0.002, "emissionsKg": 0.0007, "country": "FRA"},
            "artifacts": [
                {
                    "kind": "adapter",
                    "path": "/mnt/model-garden/artifacts/x",
                    "uri": "pvc://artifacts/t/chat/v1/adapter",
                    "sizeBytes": 4096,
                    "digest": DIGEST,
                }
            ],
        }
        | update
    )
    return result.to_termination_message()


def in_ns(obj: dict[str, Any], ns: str) -> dict[str, Any]:
    obj["metadata"]["namespace"] = ns
    return obj


class ProgressServer:
    """Stands in for the trainer's /progress (the pod IP is 127.0.0.1 in these tests)."""

    def __init__(self) -> None:
        self.progress = TrainingProgress(
            state="Training",
            step=3,
            total_steps=10,
            loss=2.0,
            energy_kwh=0.001,
            emissions_kg=0.0004,
        )  # type: ignore[arg-type]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = json.dumps(outer.progress.to_wire()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def operator_settings(progress_port: int = 1) -> OperatorSettings:
    return OperatorSettings(
        progress_poll_seconds=1,
        meter_poll_seconds=1,
        resync_seconds=2,
        progress_port=progress_port,
        metrics_port=0,
        health_port=0,
        max_running_per_namespace=0,
    )


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def progress_server() -> Iterator[ProgressServer]:
    server = ProgressServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def cluster(kube_env: Any, crds_installed: list[str]) -> Cluster:
    return Cluster(kube_env.api_client)


@pytest.fixture()
def operator(
    kube_env: Any, crds_installed: list[str], progress_server: ProgressServer
) -> Iterator[Callable[[], OperatorThread]]:
    """Start (and restart) the operator in this process; every instance is stopped at the end."""
    started: list[OperatorThread] = []

    def start() -> OperatorThread:
        for op in started:
            op.stop()
        op = OperatorThread(
            load_client(kube_env.kubeconfig), operator_settings(progress_server.port)
        )
        started.append(op)
        return op.start()

    yield start
    for op in started:
        op.stop()


# --- tests ----------------------------------------------------------------------------------


def test_finetunejob_gets_configmap_and_job_owned_by_it(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(finetunejob("tune", activeDeadlineSeconds=3600), ns))
    job = wait_for("Job", lambda: cluster.get("batch/v1", "Job", ns, "tune-train"))
    cm = wait_for("ConfigMap", lambda: cluster.get("v1", "ConfigMap", ns, "tune-train-config"))
    ftj = cluster.get(API, "FineTuneJob", ns, "tune")
    assert ftj is not None
    for child in (job, cm):
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "FineTuneJob",
            "tune",
            ftj["metadata"]["uid"],
            True,
        )
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "model_garden.training"]
    assert c["args"] == ["--config", "/etc/model-garden/training-config.json"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}} in c[
        "env"
    ]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"gpu": "a100"}
    assert job["spec"]["activeDeadlineSeconds"] == 3600 and job["spec"]["backoffLimit"] == 0
    assert pod["securityContext"]["runAsNonRoot"] is True
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"artifacts", "datasets"}
    config = json.loads(cm["data"]["training-config.json"])
    assert config["runtime"]["outputDir"] == f"/mnt/model-garden/artifacts/{ns}/chat/v1"
    assert config["runtime"]["datasetPath"] == "/mnt/model-garden/datasets/chat.jsonl"
    assert config["runtime"]["hfTokenEnv"] == "HF_TOKEN"  # the env var's name, never a value
    ftj = wait_for(
        "jobName in status",
        lambda: (
            (s := cluster.get(API, "FineTuneJob", ns, "tune"))
            and s.get("status", {}).get("jobName")
            and s
        ),
    )
    assert cluster.condition(ftj, "Running")["reason"] in ("Starting",)  # type: ignore[index]


def test_success_creates_one_model_version_across_restarts(
    cluster: Cluster, operator: Callable[[], OperatorThread], progress_server: ProgressServer
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(finetunejob("tune"), ns))
    wait_for("Job", lambda: cluster.get("batch/v1", "Job", ns, "tune-train"))
    (pod,) = wait_for(
        "pod from the Job controller", lambda: cluster.pods_of(ns, "tune-train"), timeout=30
    )
    cluster.play_kubelet(ns, pod, "Running")

    def running_with_progress() -> Any:
        ftj = cluster.get(API, "FineTuneJob", ns, "tune")
        cond = cluster.condition(ftj, "Running")
        return (
            ftj
            if cond and cond["status"] == "True" and (ftj or {}).get("status", {}).get("progress")
            else None
        )

    ftj = wait_for("Running with progress", running_with_progress, timeout=20)
    assert ftj["status"]["progress"]["step"] == 3
    assert ftj["status"]["carbon"]["emissionsKg"] == pytest.approx(0.0004)

    operator()  # restart mid-way
    cluster.play_kubelet(ns, pod, "Succeeded", exit_code=0, message=result_message())

    def succeeded() -> Any:
        ftj = cluster.get(API, "FineTuneJob", ns, "tune")
        cond = cluster.condition(ftj, "Succeeded")
        return ftj if cond and cond["status"] == "True" else None

    ftj = wait_for("Succeeded", succeeded, timeout=30)
    assert ftj["status"]["modelVersion"] == "chat-v1"
    op = operator()  # restart after success: nothing new
    # Watermark: a spec change the restarted operator must record (observedGeneration) after a
    # full pass over its indexes; any duplicate would have been created before that write.
    cluster.patch(API, "FineTuneJob", ns, "tune", {"spec": {"backoffLimit": 1}})
    generation = cluster.get(API, "FineTuneJob", ns, "tune")["metadata"]["generation"]  # type: ignore[index]
    wait_for(
        "restarted operator observed the job",
        lambda: (
            ((cluster.get(API, "FineTuneJob", ns, "tune") or {}).get("status", {})).get(
                "observedGeneration"
            )
            == generation
        ),
    )
    assert op.metrics.errors.labels("FineTuneJob")._value.get() == 0
    mvs = cluster.list(API, "ModelVersion", ns)
    assert [m["metadata"]["name"] for m in mvs] == ["chat-v1"]
    jobs = cluster.list("batch/v1", "Job", ns, "modelgarden.dev/fine-tune-job=tune")
    assert [j["metadata"]["name"] for j in jobs] == ["tune-train"]
    created = [e for e in cluster.list("v1", "Event", ns) if e["reason"] == "ModelVersionCreated"]
    assert len(created) == 1
    mv = mvs[0]
    assert mv["spec"]["source"]["fineTuneJob"] == "tune"
    assert mv["spec"]["artifact"]["format"] == "adapter"
    assert mv["spec"]["artifact"]["baseModel"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert mv["spec"]["trainingCarbon"]["emissionsKg"] == "0.0007"
    cluster.verify(ns, "chat-v1", size=4096)  # the reported digest is a claim: hashed first
    mv = wait_for(
        "ModelVersion Ready",
        lambda: (
            (m := cluster.get(API, "ModelVersion", ns, "chat-v1"))
            and cluster.condition(m, "Ready")
            and cluster.condition(m, "Ready")["status"] == "True"
            and m
        ),
    )  # type: ignore[index]
    assert mv["status"]["digest"] == DIGEST
    assert mv["status"]["lifetimeEmissionsKg"] == pytest.approx(0.0007)

    # a second job of the same model gets v2
    cluster.create(in_ns(finetunejob("tune2"), ns))
    job2 = wait_for("Job 2", lambda: cluster.get("batch/v1", "Job", ns, "tune2-train"))
    assert job2["metadata"]["labels"]["modelgarden.dev/model-version"] == "chat-v2"


def test_oomkilled_pod_fails_the_job_with_an_actionable_reason(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(finetunejob("oom"), ns))
    wait_for("Job", lambda: cluster.get("batch/v1", "Job", ns, "oom-train"))
    (pod,) = wait_for("pod", lambda: cluster.pods_of(ns, "oom-train"), timeout=30)
    cluster.play_kubelet(ns, pod, "Failed", exit_code=137, reason="OOMKilled")

    def failed() -> Any:
        cond = cluster.condition(cluster.get(API, "FineTuneJob", ns, "oom"), "Failed")
        return cond if cond and cond["status"] == "True" else None

    cond = wait_for("Failed", failed, timeout=30)
    assert cond["reason"] == "OOMKilled"
    assert "spec.resources.memory" in cond["message"] and "24Gi" in cond["message"]
    assert cluster.list(API, "ModelVersion", ns) == []


def test_dataset_error_from_termination_message(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(finetunejob("bad"), ns))
    wait_for("Job", lambda: cluster.get("batch/v1", "Job", ns, "bad-train"))
    (pod,) = wait_for("pod", lambda: cluster.pods_of(ns, "bad-train"), timeout=30)
    message = result_message(
        outcome="Failed",
        reason="DatasetError",
        message="line 3: missing field 'messages'",
        artifacts=[],
    )
    cluster.play_kubelet(ns, pod, "Failed", exit_code=1, message=message)

    def failed() -> Any:
        cond = cluster.condition(cluster.get(API, "FineTuneJob", ns, "bad"), "Failed")
        return cond if cond and cond["status"] == "True" else None

    cond = wait_for("Failed", failed, timeout=30)
    assert (cond["reason"], cond["message"]) == ("DatasetError", "line 3: missing field 'messages'")


def test_deleting_the_owner_garbage_collects_children(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(finetunejob("gone"), ns))
    wait_for("Job", lambda: cluster.get("batch/v1", "Job", ns, "gone-train"))
    wait_for("pod", lambda: cluster.pods_of(ns, "gone-train"), timeout=30)
    cluster.delete(API, "FineTuneJob", ns, "gone")
    wait_for(
        "FineTuneJob gone", lambda: cluster.get(API, "FineTuneJob", ns, "gone") is None, timeout=30
    )
    wait_for(
        "Job collected",
        lambda: cluster.get("batch/v1", "Job", ns, "gone-train") is None,
        timeout=60,
    )
    wait_for(
        "ConfigMap collected",
        lambda: cluster.get("v1", "ConfigMap", ns, "gone-train-config") is None,
        timeout=60,
    )
    wait_for("pods collected", lambda: not cluster.pods_of(ns, "gone-train"), timeout=60)


def test_inference_deployment_serves_rolls_and_guards_its_version(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(model_version("bot-v1", "bot", 1, stage="production"), ns))
    cluster.create(in_ns(model_version("bot-v2", "bot", 2), ns))
    cluster.create(
        in_ns(model_version("tone-v1", "tone", 1, format="adapter", baseModel="bot-v1"), ns)
    )
    for name in ("bot-v1", "bot-v2", "tone-v1"):
        cluster.verify(ns, name)
    cluster.create(
        in_ns(
            inference_deployment(
                "bot", model="bot", stage="production", apiKeySecret={"name": "key"}
            ),
            ns,
        )
    )
    dep = wait_for("Deployment", lambda: cluster.get("apps/v1", "Deployment", ns, "bot"))
    svc = wait_for("Service", lambda: cluster.get("v1", "Service", ns, "bot"))
    cm = wait_for("ConfigMap", lambda: cluster.get("v1", "ConfigMap", ns, "bot-serving-config"))
    for child in (dep, svc, cm):
        assert child["metadata"]["ownerReferences"][0]["kind"] == "InferenceDeployment"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["python", "-m", "model_garden.serving"]
    assert {
        "name": "MODEL_GARDEN_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "key", "key": "token"}},
    } in c["env"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert (
        dep["spec"]["template"]["metadata"]["annotations"]["modelgarden.dev/model-version"]
        == "bot-v1"
    )
    idep = wait_for(
        "endpoint",
        lambda: (
            (d := cluster.get(API, "InferenceDeployment", ns, "bot"))
            and d.get("status", {}).get("endpoint")
            and d
        ),
    )
    assert idep["status"]["endpoint"] == f"http://bot.{ns}.svc:8000/v1"
    mv1 = wait_for(
        "servingDeployments",
        lambda: (
            (m := cluster.get(API, "ModelVersion", ns, "bot-v1"))
            and m.get("status", {}).get("servingDeployments")
            and m
        ),
    )
    assert mv1["status"]["servingDeployments"] == ["bot"]

    # adapter added: the ConfigMap lists it and the pods mount its directory (read-only)
    cluster.patch(
        API,
        "InferenceDeployment",
        ns,
        "bot",
        {"spec": {"adapters": [{"name": "tone", "modelVersion": "tone-v1"}]}},
    )
    wait_for(
        "adapter in config",
        lambda: (
            "tone"
            in json.dumps(
                json.loads(
                    (cluster.get("v1", "ConfigMap", ns, "bot-serving-config") or {})["data"][
                        "serving-config.json"
                    ]
                ).get("adapters", [])
            )
        ),
    )
    mounts = wait_for(
        "adapter mounted",
        lambda: [
            m
            for m in (cluster.get("apps/v1", "Deployment", ns, "bot") or {})["spec"]["template"][
                "spec"
            ]["containers"][0]["volumeMounts"]
            if m["mountPath"].endswith("/tone/v1")
        ],
    )
    assert all(m.get("readOnly") for m in mounts)

    # the /scale subresource drives the Deployment's replicas
    scale_path = f"/apis/{API}/namespaces/{ns}/inferencedeployments/bot/scale"
    scale = cluster.x.call("GET", scale_path)
    assert scale["status"]["selector"] == "modelgarden.dev/inference-deployment=bot"
    cluster.x.call(
        "PATCH", scale_path, {"spec": {"replicas": 2}}, content_type="application/merge-patch+json"
    )
    wait_for(
        "scaled",
        lambda: (cluster.get("apps/v1", "Deployment", ns, "bot") or {})["spec"]["replicas"] == 2,
    )

    # deleting the served version is refused until the deployment moves off it
    cluster.delete(API, "ModelVersion", ns, "bot-v1")
    blocked = wait_for(
        "DeletionBlocked",
        lambda: (
            (m := cluster.get(API, "ModelVersion", ns, "bot-v1"))
            and (cluster.condition(m, "Ready") or {}).get("reason") == "DeletionBlocked"
            and m
        ),
    )
    assert "bot" in cluster.condition(blocked, "Ready")["message"]  # type: ignore[index]

    # promotion: v2 to production rolls the Deployment, then v1's deletion completes
    cluster.patch(API, "ModelVersion", ns, "bot-v2", {"spec": {"stage": "production"}})
    wait_for(
        "rolled to v2",
        lambda: (
            (cluster.get("apps/v1", "Deployment", ns, "bot") or {})["spec"]["template"]["metadata"][
                "annotations"
            ]["modelgarden.dev/model-version"]
            == "bot-v2"
        ),
    )
    # ...but the adapter still served (tone-v1) is built on bot-v1: its deletion stays blocked
    idep = wait_for(
        "served v2",
        lambda: (
            (d := cluster.get(API, "InferenceDeployment", ns, "bot"))
            and d.get("status", {}).get("modelVersion") == "bot-v2"
            and d
        ),
    )
    mv1 = cluster.get(API, "ModelVersion", ns, "bot-v1")
    assert mv1 is not None and mv1["status"]["servingDeployments"] == ["bot"]
    assert cluster.condition(mv1, "Ready")["reason"] == "DeletionBlocked"  # type: ignore[index]
    cluster.patch(API, "InferenceDeployment", ns, "bot", {"spec": {"adapters": []}})
    wait_for(
        "bot-v1 deleted", lambda: cluster.get(API, "ModelVersion", ns, "bot-v1") is None, timeout=30
    )


def test_read_write_once_claim_limits_replicas(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "artifacts", "namespace": ns},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        }
    )
    cluster.create(in_ns(model_version("m-v1", "m", 1), ns))
    cluster.verify(ns, "m-v1")
    cluster.create(in_ns(inference_deployment("m", modelVersion="m-v1", replicas=3), ns))

    def limited() -> Any:
        cond = cluster.condition(
            cluster.get(API, "InferenceDeployment", ns, "m"), "ReplicasLimited"
        )
        return cond if cond and cond["status"] == "True" else None

    cond = wait_for("ReplicasLimited", limited)
    assert cond["reason"] == "ReadWriteOnceClaim"
    dep = wait_for("Deployment", lambda: cluster.get("apps/v1", "Deployment", ns, "m"))
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"


def test_imported_model_version_is_verified_by_a_job(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(model_version("imp-v1", "imp", 1, digest=False), ns))
    job = wait_for("verify Job", lambda: cluster.get("batch/v1", "Job", ns, "imp-v1-verify"))
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == [
        "--path",
        "/mnt/model-garden/artifacts/imp/v1",
    ]
    (pod,) = wait_for("pod", lambda: cluster.pods_of(ns, "imp-v1-verify"), timeout=30)
    report = json.dumps({"sizeBytes": 99, "digest": DIGEST, "files": 3})
    cluster.play_kubelet(ns, pod, "Succeeded", exit_code=0, message=report, container="verify")
    mv = wait_for(
        "Ready",
        lambda: (
            (m := cluster.get(API, "ModelVersion", ns, "imp-v1"))
            and (cluster.condition(m, "Ready") or {}).get("status") == "True"
            and m
        ),
        timeout=30,
    )
    assert (mv["status"]["sizeBytes"], mv["status"]["digest"]) == (99, DIGEST)


def test_metrics_and_liveness_endpoints(
    kube_env: Any, crds_installed: list[str], cluster: Cluster
) -> None:
    import httpx

    from harness.envtest import free_port

    metrics_port, health_port = free_port(), free_port()
    settings = operator_settings()
    op = OperatorThread(
        load_client(kube_env.kubeconfig),
        settings,
        liveness_endpoint=f"http://127.0.0.1:{health_port}/healthz",
    )
    op.metrics.serve(metrics_port, addr="127.0.0.1")
    op.start()
    try:
        ns = cluster.namespace()
        cluster.create(in_ns(finetunejob("m"), ns))
        wait_for("Job", lambda: cluster.get("batch/v1", "Job", ns, "m-train"))
        assert httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=5).status_code == 200
        text = wait_for(
            "resources by condition",
            lambda: (
                (t := httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text)
                and 'modelgarden_resources{condition="Running",kind="FineTuneJob",status="False"}'
                in t
                and t
            ),
        )
        assert 'modelgarden_operator_reconciliations_total{kind="FineTuneJob"}' in text
        assert "modelgarden_operator_reconcile_errors_total" in text
    finally:
        op.stop()


@contextmanager
def _operator_with_meter(kube_env: Any, reading: Callable[[], Any]) -> Iterator[OperatorThread]:
    """The operator, polling a stand-in pod meter that answers each GET with ``reading()`` (a
    ServingCarbon) on 127.0.0.1; both are stopped on the way out."""

    class Meter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps(reading().to_wire()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Meter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = operator_settings()
    settings.meter_port = server.server_address[1]
    op = OperatorThread(load_client(kube_env.kubeconfig), settings).start()
    try:
        yield op
    finally:
        op.stop()
        server.shutdown()
        server.server_close()


def test_meter_polling_keeps_serving_carbon_and_model_totals_current(
    kube_env: Any, crds_installed: list[str], cluster: Cluster
) -> None:
    from model_garden.api.contracts import ServingCarbon

    readings = iter(range(1, 10_000))

    def reading() -> Any:
        n = next(readings)  # cumulative totals that grow by 3.6 kJ and 1 g per poll
        return ServingCarbon(  # half of it idle; the window: 0.5 g of active for 100 tokens
            energy_joules=3600.0 * n,
            active_energy_joules=1800.0 * n,
            idle_energy_joules=1800.0 * n,
            emissions_grams=1.0 * n,
            active_emissions_grams=0.5 * n,
            idle_emissions_grams=0.5 * n,
            prompt_tokens=100 * n,
            window_active_emissions_grams=0.5,
            window_tokens=100,
            method="measured",
        )  # type: ignore[arg-type]

    with _operator_with_meter(kube_env, reading):
        ns = cluster.namespace()
        cluster.create(in_ns(model_version("m-v1", "m", 1), ns))
        cluster.verify(ns, "m-v1")
        cluster.create(in_ns(inference_deployment("m", modelVersion="m-v1"), ns))
        (pod,) = wait_for(
            "server pod",
            lambda: cluster.list("v1", "Pod", ns, "modelgarden.dev/inference-deployment=m"),
            timeout=30,
        )
        cluster.play_kubelet(ns, pod, "Running", container="server")

        def carbon() -> Any:
            status = (cluster.get(API, "InferenceDeployment", ns, "m") or {}).get("status") or {}
            return status if (status.get("carbon") or {}).get("emissionsKg", 0) >= 0.002 else None

        status = wait_for("serving carbon", carbon, timeout=30)
        assert status["carbon"]["method"] == "measured" and status["carbon"]["tokens"] >= 200
        # Active grams over window tokens (idle excluded): 5, not all emissions / tokens (10).
        assert status["carbon"]["gPer1kTokens"] == pytest.approx(5.0)
        assert status["carbon"]["idleEmissionsKg"] == pytest.approx(
            status["carbon"]["emissionsKg"] / 2
        )
        assert [p["uid"] for p in status["carbon"]["pods"]] == [pod["metadata"]["uid"]]
        mv = wait_for(
            "serving totals",
            lambda: (
                (m := cluster.get(API, "ModelVersion", ns, "m-v1"))
                and (m.get("status") or {}).get("servingEmissionsKg")
                and m
            ),
        )
        assert mv["status"]["lifetimeEmissionsKg"] >= mv["status"]["servingEmissionsKg"] > 0
        (entry,) = mv["status"]["servingByDeployment"]
        assert entry["deployment"] == "m" and entry["emissionsKg"] == pytest.approx(
            mv["status"]["servingEmissionsKg"]
        )


def test_namespace_cap_queues_jobs_until_a_slot_frees(
    kube_env: Any, crds_installed: list[str], cluster: Cluster
) -> None:
    settings = operator_settings()
    settings.max_running_per_namespace = 1
    settings.progress_poll_seconds = (
        3600  # the slot must be handed on by the Job's event, not a timer
    )
    op = OperatorThread(load_client(kube_env.kubeconfig), settings).start()
    try:
        ns = cluster.namespace()
        cluster.create(in_ns(finetunejob("first"), ns))
        wait_for("first Job", lambda: cluster.get("batch/v1", "Job", ns, "first-train"))
        cluster.create(in_ns(finetunejob("second"), ns))

        def queued() -> Any:
            cond = cluster.condition(cluster.get(API, "FineTuneJob", ns, "second"), "Running")
            return cond if cond and cond["reason"] == "Queued" else None

        cond = wait_for("second Queued", queued)
        assert "at most 1" in cond["message"]
        assert cluster.get("batch/v1", "Job", ns, "second-train") is None
        (pod,) = wait_for("pod", lambda: cluster.pods_of(ns, "first-train"), timeout=30)
        cluster.play_kubelet(ns, pod, "Failed", exit_code=137, reason="OOMKilled")
        job = wait_for(
            "second Job", lambda: cluster.get("batch/v1", "Job", ns, "second-train"), timeout=30
        )
        # the failed job released its version: the second one reserves v1 again
        assert job["metadata"]["labels"]["modelgarden.dev/model-version"] == "chat-v1"
    finally:
        op.stop()


def test_unschedulable_pod_is_reported_with_the_scheduler_message(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(finetunejob("big", resources={"gpus": 8}), ns))
    (pod,) = wait_for("pod", lambda: cluster.pods_of(ns, "big-train"), timeout=30)
    message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    cluster.patch(
        "v1",
        "Pod",
        ns,
        pod["metadata"]["name"],
        {
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                    }
                ],
            }
        },
        sub="status",
    )

    def unschedulable() -> Any:
        cond = cluster.condition(cluster.get(API, "FineTuneJob", ns, "big"), "Running")
        return cond if cond and cond["reason"] == "Unschedulable" else None

    cond = wait_for("Unschedulable", unschedulable)
    assert "8 nvidia.com/gpu" in cond["message"] and message in cond["message"]


def _uid(cluster: Cluster, kind: str, ns: str, name: str) -> str:
    return str((cluster.get(API, kind, ns, name) or {})["metadata"]["uid"])


def test_deleted_jobs_leave_no_admission_behind(
    kube_env: Any, crds_installed: list[str], cluster: Cluster
) -> None:
    """Create -> delete cycles: a recreated job starts again and the cap never fills with ghosts."""
    settings = operator_settings()
    settings.max_running_per_namespace = 1
    op = OperatorThread(load_client(kube_env.kubeconfig), settings).start()
    try:
        ns = cluster.namespace()
        for cycle in range(2):
            cluster.create(in_ns(finetunejob("again"), ns))
            uid = _uid(cluster, "FineTuneJob", ns, "again")
            job = wait_for(
                f"Job of cycle {cycle}",
                lambda uid=uid: (
                    (j := cluster.get("batch/v1", "Job", ns, "again-train"))
                    and j["metadata"]["ownerReferences"][0]["uid"] == uid
                    and j
                ),
                timeout=60,
            )
            assert job["metadata"]["labels"]["modelgarden.dev/fine-tune-job-uid"] == uid
            cluster.delete(API, "FineTuneJob", ns, "again")
            wait_for(
                "Job collected",
                lambda: cluster.get("batch/v1", "Job", ns, "again-train") is None,
                timeout=60,
            )
        # the cap is 1 and nothing runs: the next job starts at once
        cluster.create(in_ns(finetunejob("next"), ns))
        wait_for("next Job", lambda: cluster.get("batch/v1", "Job", ns, "next-train"), timeout=30)
    finally:
        op.stop()


def test_recreated_job_does_not_adopt_its_predecessors_job(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(finetunejob("twin"), ns))
    wait_for("Job", lambda: cluster.get("batch/v1", "Job", ns, "twin-train"))
    (pod,) = wait_for("pod", lambda: cluster.pods_of(ns, "twin-train"), timeout=30)
    cluster.orphan(ns, "twin-train")  # its Job outlives it
    cluster.delete(API, "FineTuneJob", ns, "twin")
    wait_for("deleted", lambda: cluster.get(API, "FineTuneJob", ns, "twin") is None, timeout=30)
    cluster.play_kubelet(ns, pod, "Succeeded", exit_code=0, message=result_message())
    wait_for(
        "old Job complete",
        lambda: cluster.condition(cluster.get("batch/v1", "Job", ns, "twin-train"), "Complete"),
        timeout=30,
    )
    cluster.create(in_ns(finetunejob("twin"), ns))
    # The old Job (still named twin-train) is not adopted: the new job reports it is in the way.
    ftj = wait_for(
        "recreated job reconciled",
        lambda: (
            (f := cluster.get(API, "FineTuneJob", ns, "twin"))
            and cluster.condition(f, "Conflict")
            and f
        ),
    )
    assert "twin-train" in cluster.condition(ftj, "Conflict")["message"]  # type: ignore[index]
    assert cluster.condition(ftj, "Succeeded") is None
    assert cluster.list(API, "ModelVersion", ns) == []


def test_recreated_version_does_not_take_the_old_verification(
    cluster: Cluster, operator: Callable[[], OperatorThread]
) -> None:
    operator()
    ns = cluster.namespace()
    cluster.create(in_ns(model_version("imp-v1", "imp", 1, digest=False), ns))
    (pod,) = wait_for("verify pod", lambda: cluster.pods_of(ns, "imp-v1-verify"), timeout=30)
    cluster.orphan(ns, "imp-v1-verify")
    cluster.delete(API, "ModelVersion", ns, "imp-v1")
    wait_for("deleted", lambda: cluster.get(API, "ModelVersion", ns, "imp-v1") is None, timeout=30)
    report = json.dumps({"sizeBytes": 99, "digest": DIGEST, "files": 3})
    cluster.play_kubelet(ns, pod, "Succeeded", exit_code=0, message=report, container="verify")
    recreated = model_version("imp-v1", "imp", 1, digest=False, uri="pvc://artifacts/imp/other")
    cluster.create(in_ns(recreated, ns))
    # The old verification Job (still named imp-v1-verify) is in the way, not adopted.
    mv = wait_for(
        "recreated version reconciled",
        lambda: (
            (m := cluster.get(API, "ModelVersion", ns, "imp-v1"))
            and cluster.condition(m, "Conflict")
            and m
        ),
    )
    assert "imp-v1-verify" in cluster.condition(mv, "Conflict")["message"]  # type: ignore[index]
    assert "digest" not in mv["status"]
    assert (cluster.condition(mv, "Ready") or {}).get("status") != "True"


def test_serving_totals_add_up_across_two_deployments_of_one_version(
    kube_env: Any, crds_installed: list[str], cluster: Cluster
) -> None:
    """Meter -> InferenceDeployment -> ModelVersion: the version's serving totals are exactly
    the sum of what each deployment attributed to it (only the version's reconciler writes them)."""
    from model_garden.api.contracts import ServingCarbon

    lock, polls = threading.Lock(), [0]

    def reading() -> Any:
        with lock:
            polls[0] += 1
            n = min(polls[0], 5)  # grows for a few polls, then the pods go idle-free
        return ServingCarbon(
            energy_joules=3600.0 * n,
            active_energy_joules=3600.0 * n,
            emissions_grams=1.0 * n,
            active_emissions_grams=1.0 * n,
            prompt_tokens=10 * n,
            method="measured",
        )  # type: ignore[arg-type]

    with _operator_with_meter(kube_env, reading) as op:
        ns = cluster.namespace()
        cluster.create(in_ns(model_version("m-v1", "m", 1), ns))
        cluster.verify(ns, "m-v1")
        for name in ("a", "b"):
            cluster.create(in_ns(inference_deployment(name, modelVersion="m-v1"), ns))
        for name in ("a", "b"):
            (pod,) = wait_for(
                f"{name} pod",
                lambda name=name: cluster.list(
                    "v1", "Pod", ns, f"modelgarden.dev/inference-deployment={name}"
                ),
                timeout=30,
            )
            cluster.play_kubelet(ns, pod, "Running", container="server")

        def settled() -> Any:
            shares = []
            for name in ("a", "b"):
                idep = cluster.get(API, "InferenceDeployment", ns, name) or {}
                entries = ((idep.get("status") or {}).get("carbon") or {}).get("byModelVersion")
                if not entries or entries[0]["emissionsKg"] != pytest.approx(0.005, rel=1e-12):
                    return None  # each pod's meter ends at 5 g
                shares.append(entries[0]["emissionsKg"])
            mv = cluster.get(API, "ModelVersion", ns, "m-v1") or {}
            total = (mv.get("status") or {}).get("servingEmissionsKg")
            return (mv, shares) if total == pytest.approx(sum(shares), rel=1e-12) else None

        mv, shares = wait_for("totals settled", settled, timeout=60)
        assert mv["status"]["servingEmissionsKg"] == pytest.approx(0.010, rel=1e-12)
        assert sorted(e["deployment"] for e in mv["status"]["servingByDeployment"]) == ["a", "b"]
        assert mv["status"]["lifetimeEmissionsKg"] == pytest.approx(0.010, rel=1e-12)
        assert op.metrics.errors.labels("ModelVersion")._value.get() == 0
