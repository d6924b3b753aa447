"""What the planners produce, checked against a current Kubernetes schema and the restricted profile.

The envtest server is Kubernetes 1.20: it has neither Job ``suspend`` nor PodSecurity admission,
so Kueue admission and the restricted Pod Security Standard are checked here, on the manifests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob
from model_garden.operator.inferencedeployment.plan import (
    InferenceDeploymentWorld,
    plan_inferencedeployment,
)
from model_garden.operator.modelversion.plan import ModelVersionWorld, plan_modelversion

from .factories import NOW, SETTINGS, ftj, idep, mv, mvt

KUBERNETES_VERSION = "1.33.0"
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
REPO = Path(__file__).resolve().parents[3]


def _children() -> list[dict[str, Any]]:
    objs = plan_finetunejob(ftj(queueName="gpu-queue"), FineTuneJobWorld(), SETTINGS, NOW).create
    objs += plan_modelversion(
        mv("imp-v1", "imp", 1, digest=False), ModelVersionWorld(), SETTINGS, NOW
    ).create
    world = InferenceDeploymentWorld(
        model_versions=[mvt("chat-v1"), mvt("tone-v1", "tone", 1, fmt="adapter")]
    )
    body = idep(
        modelVersion="chat-v1",
        adapters=[{"name": "tone", "modelVersion": "tone-v1"}],
        apiKeySecret={"name": "k"},
        resources={"gpus": 1},
    )
    objs += plan_inferencedeployment(body, world, SETTINGS, NOW).apply
    objs.append(_export_job())
    return objs


def _export_job() -> dict[str, Any]:
    """The Job `mg export` runs in a cluster: the artifact read-only, the output writable."""
    from model_garden.api import ModelVersion
    from model_garden.api.offline import ExportConfig, VersionArtifact
    from model_garden.operator.modelversion.tasks import build_task_job
    from model_garden.operator.storage import Mounts, resolve

    body = mv("chat-v1")
    mounts = Mounts()
    path = mounts.add(resolve(body["spec"]["artifact"]["uri"]))
    out = mounts.add(resolve("pvc://artifacts/team/exports/chat-v1-merged"), writable=True)
    document = ExportConfig(
        artifact=VersionArtifact(model_version="chat-v1", path=path, adapter=False), out_dir=out
    )
    typed = ModelVersion.model_validate(body)
    return build_task_job(body, typed, "export", document, mounts, SETTINGS, "chat-v1-export-1")


CHILDREN = _children()


@pytest.mark.parametrize(
    "obj", CHILDREN, ids=[f"{o['kind']}/{o['metadata']['name']}" for o in CHILDREN]
)
def test_child_validates_against_a_current_kubernetes(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    template = (obj.get("spec") or {}).get("template")
    return template["spec"] if template else None


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """The Pod Security Standard 'restricted' checks (baseline + restricted), as a list of failures."""
    out = []
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            out.append(key)
    for vol in spec.get("volumes", []):
        kinds = set(vol) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            out.append(f"volume {vol['name']}: {kinds}")
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            out.append(f"{c['name']}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{c['name']}: allowPrivilegeEscalation must be false")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            out.append(f"{c['name']}: runAsNonRoot")
        if sc.get("runAsUser") == 0:
            out.append(f"{c['name']}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{c['name']}: seccompProfile")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{c['name']}: must drop ALL capabilities")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{c['name']}: adds capabilities")
        for port in c.get("ports", []):
            if port.get("hostPort"):
                out.append(f"{c['name']}: hostPort")
    return out


PODS = [o for o in CHILDREN if pod_spec(o) is not None]


@pytest.mark.parametrize("obj", PODS, ids=[f"{o['kind']}/{o['metadata']['name']}" for o in PODS])
def test_pods_meet_the_restricted_pod_security_profile(obj: dict[str, Any]) -> None:
    spec = pod_spec(obj)
    assert spec is not None
    assert restricted_violations(spec) == []
    for c in spec["containers"]:
        assert c["resources"]["limits"], "every container has limits"


def test_restricted_check_catches_a_root_privileged_pod() -> None:
    bad = {
        "hostNetwork": True,
        "containers": [{"name": "x", "securityContext": {"privileged": True}}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
    }
    assert len(restricted_violations(bad)) >= 5


def test_kueue_job_is_suspended_with_the_queue_label_on_a_current_schema() -> None:
    (job,) = [o for o in CHILDREN if o["kind"] == "Job" and o["metadata"]["name"] == "tune-train"]
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    "path", sorted((REPO / "deploy" / "rbac").glob("*.yaml")), ids=lambda p: p.name
)
def test_rbac_manifests_validate_and_use_no_wildcards(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        for rule in doc.get("rules", []):
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], (path.name, rule)
        if doc["kind"] == "ClusterRole":
            secrets = [r for r in doc["rules"] if "secrets" in r["resources"]]
            assert secrets == [], "the operator never reads Secrets"


def test_trainer_job_fails_at_once_on_bad_config_or_bad_input_on_a_current_schema() -> None:
    """The envtest server (1.20) drops podFailurePolicy, so the rule is checked here: exit 2
    (unreadable config) and 3 (bad input) fail the Job without using up backoffLimit."""
    (job,) = [o for o in CHILDREN if o["kind"] == "Job" and o["metadata"]["name"] == "tune-train"]
    fail = [r for r in job["spec"]["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert fail == [
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "trainer", "operator": "In", "values": [2, 3]},
        }
    ]
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_the_export_job_mounts_what_its_config_names_and_passes_it_by_environment() -> None:
    from model_garden.api.offline import ExportConfig

    (job,) = [o for o in CHILDREN if o["metadata"]["name"] == "chat-v1-export-1"]
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", "model_garden.export"]
    assert container["args"] == ["--config-env", "MODEL_GARDEN_TASK_CONFIG"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    config = ExportConfig.model_validate_json(env["MODEL_GARDEN_TASK_CONFIG"])
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts[config.artifact.path] is True and mounts[config.out_dir] is False
    (prepare,) = spec["initContainers"]
    assert prepare["command"][-1] == config.out_dir, "made by uid 1000 before kubelet would"
    assert job["spec"]["backoffLimit"] == 0 and job["metadata"]["ownerReferences"]
    assert spec["automountServiceAccountToken"] is False


def test_network_policy_and_api_key_volume_are_in_the_validated_children() -> None:
    kinds = {o["kind"] for o in CHILDREN}
    assert "NetworkPolicy" in kinds
    (deployment,) = [o for o in CHILDREN if o["kind"] == "Deployment"]
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert any(v.get("secret", {}).get("secretName") == "k" for v in volumes)
