"""Shared pod pieces: bounded scratch, ephemeral-storage requests, fsGroup policy, the API key."""

from __future__ import annotations

from typing import Any

import kubernetes_validate

from model_garden.api.common import Resources, SecretKeyRef
from model_garden.operator.podspec import (
    API_KEY_FILE,
    api_key_env,
    api_key_volume,
    compute,
    container_security_context,
    pod_security_context,
    scratch_volumes,
)
from model_garden.operator.settings import OperatorSettings

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
