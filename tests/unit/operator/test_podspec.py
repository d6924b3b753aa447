"""Shared pod pieces: bounded scratch, ephemeral-storage requests, fsGroup policy, the API key,
the admin's GPU nodeSelector/tolerations defaults."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from pydantic import ValidationError

from model_garden.api.common import Resources, SecretKeyRef, Toleration
from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob
from model_garden.operator.inferencedeployment.plan import (
    InferenceDeploymentWorld,
    plan_inferencedeployment,
)
from model_garden.operator.podspec import (
    API_KEY_FILE,
    api_key_env,
    api_key_volume,
    compute,
    container_security_context,
    pod_security_context,
    scheduling,
    scratch_volumes,
)
from model_garden.operator.settings import OperatorSettings

from . import factories

KUBERNETES_VERSION = "1.33.0"


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}


def test_every_disk_empty_dir_has_a_size_limit() -> None:
    volumes, _mounts = scratch_volumes()
    by_name = {v["name"]: v["emptyDir"] for v in volumes}
    assert by_name["tmp"]["sizeLimit"] == "4Gi"
    assert by_name["cache"]["sizeLimit"] == "100Gi"
    assert "sizeLimit" not in by_name["dshm"]  # memory: bounded by the pod's memory limit
    settings = OperatorSettings(tmp_size_limit="1Gi", cache_size_limit="20Gi")
    volumes, _ = scratch_volumes(settings.tmp_size_limit, settings.cache_size_limit, "8Gi")
    assert [v["emptyDir"].get("sizeLimit") for v in volumes] == ["1Gi", "20Gi", "8Gi"]
    assert volumes[2]["emptyDir"]["medium"] == "Memory"


def test_ephemeral_storage_is_requested_not_limited() -> None:
    res = compute(Resources(gpus=1), "2", "8Gi", OperatorSettings().ephemeral_storage_request)
    assert res["requests"]["ephemeral-storage"] == "10Gi"
    assert "ephemeral-storage" not in res["limits"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "1"
    # without it, as before (callers that do not pass it keep their output)
    assert compute(Resources(), "2", "8Gi") == {
        "requests": {"cpu": "2", "memory": "8Gi"},
        "limits": {"cpu": "2", "memory": "8Gi"},
    }


def test_fs_group_is_applied_only_on_root_mismatch() -> None:
    sc = pod_security_context()
    assert sc["fsGroup"] == 1000 and sc["fsGroupChangePolicy"] == "OnRootMismatch"


def test_api_key_reaches_the_pod_by_env_and_as_a_read_only_file() -> None:
    secret = SecretKeyRef(name="bot-key", key="key")
    env = api_key_env(secret)
    assert env == {
        "name": "MODEL_GARDEN_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "bot-key", "key": "key"}},
    }
    volume, mount = api_key_volume(secret)
    assert volume["secret"] == {
        "secretName": "bot-key",
        "items": [{"key": "key", "path": "api-key"}],
        "defaultMode": 0o440,
    }
    assert mount["readOnly"] is True and "subPath" not in mount  # updates reach the file
    assert f"{mount['mountPath']}/{volume['secret']['items'][0]['path']}" == API_KEY_FILE


def test_a_pod_built_from_these_pieces_validates() -> None:
    volumes, mounts = scratch_volumes(shm_size_limit="8Gi")
    key_volume, key_mount = api_key_volume(SecretKeyRef(name="k"))
    pod = _pod(
        securityContext=pod_security_context(),
        containers=[
            {
                "name": "c",
                "image": "i",
                "env": [api_key_env(SecretKeyRef(name="k"))],
                "resources": compute(Resources(), "1", "8Gi", "10Gi"),
                "securityContext": container_security_context(),
                "volumeMounts": [*mounts, key_mount],
            }
        ],
        volumes=[*volumes, key_volume],
    )
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


GPU_NODES = {"nvidia.com/gpu.present": "true"}
GPU_TAINT = Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")
GPU_SETTINGS = OperatorSettings(gpu_node_selector=GPU_NODES, gpu_tolerations=[GPU_TAINT])


def test_gpu_pods_without_their_own_nodes_get_the_admins_gpu_defaults() -> None:
    out = scheduling(Resources(gpus=1), GPU_NODES, [GPU_TAINT])
    assert out == {
        "nodeSelector": GPU_NODES,
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    pod = _pod(containers=[{"name": "c", "image": "i"}], **out)
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_cpu_pods_never_get_the_gpu_defaults() -> None:
    assert scheduling(Resources(), GPU_NODES, [GPU_TAINT]) == {}


def test_the_specs_own_nodes_and_tolerations_replace_each_default_field_by_field() -> None:
    own = Toleration(key="pool", operator="Equal", value="a100", effect="NoSchedule")
    both = scheduling(
        Resources(gpus=2, node_selector={"pool": "a100"}, tolerations=[own]),
        GPU_NODES,
        [GPU_TAINT],
    )
    assert both == {"nodeSelector": {"pool": "a100"}, "tolerations": [own.to_wire()]}
    only_nodes = scheduling(
        Resources(gpus=1, node_selector={"pool": "a100"}), GPU_NODES, [GPU_TAINT]
    )
    assert only_nodes["nodeSelector"] == {"pool": "a100"}  # not merged with the default
    assert only_nodes["tolerations"] == [GPU_TAINT.to_wire()]
    # without defaults (the settings' default), as before
    assert scheduling(Resources(gpus=1)) == {}


def test_gpu_defaults_are_read_from_the_environment_as_json(monkeypatch: Any) -> None:
    monkeypatch.setenv("MODEL_GARDEN_OPERATOR_GPU_NODE_SELECTOR", json.dumps(GPU_NODES))
    monkeypatch.setenv(
        "MODEL_GARDEN_OPERATOR_GPU_TOLERATIONS",
        json.dumps([{"key": "nvidia.com/gpu", "operator": "Exists", "tolerationSeconds": 30}]),
    )
    settings = OperatorSettings()
    assert settings.gpu_node_selector == GPU_NODES
    assert [t.to_wire() for t in settings.gpu_tolerations] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "tolerationSeconds": 30}
    ]
    monkeypatch.setenv("MODEL_GARDEN_OPERATOR_GPU_TOLERATIONS", '[{"operator": "Sometimes"}]')
    with pytest.raises(ValidationError, match="gpu_tolerations"):
        OperatorSettings()
    assert (
        OperatorSettings.model_fields["gpu_node_selector"].get_default(call_default_factory=True)
        == {}
    )


def test_both_planners_give_gpu_pods_the_defaults() -> None:
    """The call sites: a FineTuneJob's trainer pod and an InferenceDeployment's server pods."""
    body = factories.ftj(resources={"gpus": 1})
    plan = plan_finetunejob(body, FineTuneJobWorld(), GPU_SETTINGS, factories.NOW)
    (job,) = [o for o in plan.create if o["kind"] == "Job"]
    trainer = job["spec"]["template"]["spec"]
    assert trainer["nodeSelector"] == GPU_NODES
    assert trainer["tolerations"] == [GPU_TAINT.to_wire()]
    mv = factories.mvt("chat-v1", stage="production")
    body = factories.idep(model="chat", stage="production", resources={"gpus": 1})
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=[mv]), GPU_SETTINGS, factories.NOW
    )
    (dep,) = [o for o in plan.apply if o["kind"] == "Deployment"]
    server = dep["spec"]["template"]["spec"]
    assert server["nodeSelector"] == GPU_NODES
    assert server["tolerations"] == [GPU_TAINT.to_wire()]
    # a CPU deployment: no GPU defaults
    body = factories.idep(model="chat", stage="production")
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=[mv]), GPU_SETTINGS, factories.NOW
    )
    (dep,) = [o for o in plan.apply if o["kind"] == "Deployment"]
    assert "nodeSelector" not in dep["spec"]["template"]["spec"]
