"""ModelVersion and InferenceDeployment planners: tables of named behaviours, no cluster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_garden.api import InferenceDeployment, ModelVersion
from model_garden.api.contracts import ServingCarbon, ServingConfig
from model_garden.api.labels import FINALIZER_IN_USE
from model_garden.operator.inferencedeployment.plan import (
    InferenceDeploymentWorld,
    plan_inferencedeployment,
)
from model_garden.operator.modelversion.plan import (
    ModelVersionWorld,
    plan_modelversion,
    serving_deployments,
)
from model_garden.operator.servingcarbon import accumulate

from .factories import DIGEST, NOW, SETTINGS, conditions, idep, mv, mvt

# --- ModelVersion ---------------------------------------------------------------------------


def test_digest_in_spec_is_a_claim_checked_by_a_verification_job() -> None:
    """A trained version's reported digest is not proof: the files are hashed first."""
    plan = plan_modelversion(_trained(), ModelVersionWorld(), SETTINGS, NOW)
    assert conditions(plan.status)["Ready"] == ("False", "Verifying")
    assert plan.status and "digest" not in plan.status
    (job,) = plan.create
    assert job["metadata"]["labels"]["modelgarden.dev/model-version-uid"] == "uid-chat-v1"


def test_claimed_digest_that_matches_the_files_is_verified() -> None:
    world = ModelVersionWorld(
        verify_job={"status": {"conditions": [{"type": "Complete", "status": "True"}]}},
        verify_pods=[_verify_pod(json.dumps({"sizeBytes": 123, "digest": DIGEST}))],
    )
    plan = plan_modelversion(_trained(), world, SETTINGS, NOW)
    assert conditions(plan.status)["Ready"] == ("True", "Verified")
    assert plan.status and plan.status["digest"] == DIGEST and plan.status["sizeBytes"] == 123
    assert plan.create == []


def test_claimed_digest_the_files_contradict_fails_verification() -> None:
    other = "sha256:" + "ab" * 32
    world = ModelVersionWorld(
        verify_job={"status": {"conditions": [{"type": "Complete", "status": "True"}]}},
        verify_pods=[_verify_pod(json.dumps({"sizeBytes": 123, "digest": other}))],
    )
    plan = plan_modelversion(_trained(), world, SETTINGS, NOW)
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    assert ready["reason"] == "VerificationFailed"
    assert DIGEST in ready["message"] and other in ready["message"]
    assert "digest" not in (plan.status or {})


def test_claimed_digest_off_claim_is_served_but_said_unchecked() -> None:
    body = mv("s3m-v1", "s3m", 1, ready=False, uri="file:///models/s3m")
    plan = plan_modelversion(body, ModelVersionWorld(), SETTINGS, NOW)
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    assert ready["reason"] == "NotVerified" and "not checked" in ready["message"]
    assert plan.create == []


def _trained(**status: Any) -> dict[str, Any]:
    body = mv(ready=False, status=status or None)
    body["spec"]["trainingCarbon"] = {
        "energyKwh": "1.5",
        "emissionsKg": "0.25",
        "method": "measured",
    }
    body["spec"]["source"] = {"fineTuneJob": "tune", "fineTuneJobUid": "uid-tune"}
    return body


def test_lifetime_emissions_are_training_plus_serving() -> None:
    """Serving totals come from the deployments' byModelVersion, copied by this planner only."""
    served = idep(
        "bot",
        modelVersion="chat-v1",
        status={
            "carbon": {
                "byModelVersion": [
                    {"modelVersion": "chat-v1", "energyKwh": 2.0, "emissionsKg": 0.5, "tokens": 9}
                ]
            }
        },
    )
    world = ModelVersionWorld(deployments=[served])
    plan = plan_modelversion(_trained(), world, SETTINGS, NOW)
    assert plan.status and plan.status["trainingEmissionsKg"] == 0.25
    assert plan.status["servingEmissionsKg"] == pytest.approx(0.5)
    assert plan.status["lifetimeEmissionsKg"] == pytest.approx(0.75)
    (share,) = plan.status["servingByDeployment"]
    assert share["deployment"] == "bot" and share["uid"] == "uid-bot"


def test_imported_version_gets_a_verification_job() -> None:
    plan = plan_modelversion(
        mv("imp-v1", "imp", 1, digest=False, ready=False), ModelVersionWorld(), SETTINGS, NOW
    )
    (job,) = plan.create
    assert job["metadata"]["name"] == "imp-v1-verify"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "-m",
        "model_garden.operator.verify",
    ]
    assert conditions(plan.status)["Ready"] == ("False", "Verifying")


def _verify_pod(message: str, code: int = 0) -> dict[str, Any]:
    return {
        "metadata": {"name": "imp-v1-verify-x", "creationTimestamp": "2026-11-27T11:00:00Z"},
        "status": {
            "containerStatuses": [
                {"name": "verify", "state": {"terminated": {"exitCode": code, "message": message}}}
            ]
        },
    }


def test_imported_version_is_ready_once_the_job_reports() -> None:
    world = ModelVersionWorld(
        verify_job={"status": {"conditions": [{"type": "Complete", "status": "True"}]}},
        verify_pods=[_verify_pod(json.dumps({"sizeBytes": 5, "digest": DIGEST}))],
    )
    plan = plan_modelversion(
        mv("imp-v1", "imp", 1, digest=False, ready=False), world, SETTINGS, NOW
    )
    assert conditions(plan.status)["Ready"] == ("True", "Verified")
    assert plan.status and plan.status["sizeBytes"] == 5


def test_failed_verification_says_what_is_missing() -> None:
    world = ModelVersionWorld(
        verify_job={"status": {"conditions": [{"type": "Failed", "status": "True"}]}},
        verify_pods=[_verify_pod(json.dumps({"error": "config.json missing in /x"}), 1)],
    )
    plan = plan_modelversion(
        mv("imp-v1", "imp", 1, digest=False, ready=False), world, SETTINGS, NOW
    )
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    assert ready["reason"] == "VerificationFailed" and "config.json missing" in ready["message"]


def test_version_without_the_finalizer_gets_it() -> None:
    plan = plan_modelversion(mv(finalizers=[]), ModelVersionWorld(), SETTINGS, NOW)
    assert plan.patch[0][1]["metadata"]["finalizers"] == [FINALIZER_IN_USE]


def test_deleting_a_served_version_is_blocked_with_a_message() -> None:
    plan = plan_modelversion(
        mv(deleting=True), ModelVersionWorld(serving_deployments=["bot"]), SETTINGS, NOW
    )
    assert plan.patch == []
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    assert ready["reason"] == "DeletionBlocked" and "bot" in ready["message"]
    assert [e.reason for e in plan.events] == ["DeletionBlocked"]


def test_deleting_an_unserved_version_releases_the_finalizer() -> None:
    plan = plan_modelversion(
        mv(deleting=True, finalizers=["other", FINALIZER_IN_USE]),
        ModelVersionWorld(),
        SETTINGS,
        NOW,
    )
    assert plan.patch[0][1]["metadata"] == {"finalizers": ["other"], "resourceVersion": "7"}


# --- InferenceDeployment --------------------------------------------------------------------


def _versions() -> list[ModelVersion]:
    return [
        mvt("chat-v1", stage="production"),
        mvt("chat-v2", version=2, stage="staging"),
        mvt("tone-v1", "tone", 1, fmt="adapter"),
        mvt("ad-v1", "ad", 1, fmt="adapter"),
    ]


def _applied(plan: Any) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in plan.apply}


def _observed(plan: Any, ready: int = 1) -> InferenceDeploymentWorld:
    """The world after the plan was applied and the Deployment rolled out."""
    objs = _applied(plan)
    objs.setdefault("Service", {})
    dep = json.loads(json.dumps(objs["Deployment"]))
    dep["metadata"]["generation"] = 1
    replicas = dep["spec"]["replicas"]
    dep["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "readyReplicas": ready,
        "updatedReplicas": replicas,
    }
    return InferenceDeploymentWorld(
        model_versions=_versions(),
        deployment=dep,
        service=objs["Service"],
        config_map=objs["ConfigMap"],
        network_policy=objs.get("NetworkPolicy"),
    )


def _body_after(body: dict[str, Any], plan: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    out["status"].update(plan.status or {})
    return out


def test_new_deployment_gets_configmap_deployment_and_service() -> None:
    body = idep(model="chat", stage="production", resources={"gpus": 1})
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    objs = _applied(plan)
    assert set(objs) == {"NetworkPolicy", "ConfigMap", "Deployment", "Service"}
    assert plan.apply[0]["kind"] == "NetworkPolicy"  # in place before any pod starts
    config = ServingConfig.model_validate_json(objs["ConfigMap"]["data"]["serving-config.json"])
    assert (config.model.name, config.model.path) == (
        "chat",
        "/mnt/model-garden/artifacts/team/chat/v1/merged",
    )
    dep = objs["Deployment"]
    assert (
        dep["spec"]["template"]["metadata"]["annotations"]["modelgarden.dev/model-version"]
        == "chat-v1"
    )
    assert (
        dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        == "1"
    )
    assert plan.status and plan.status["endpoint"] == "http://bot.team.svc:8000/v1"
    assert plan.status["selector"] == "modelgarden.dev/inference-deployment=bot"
    assert conditions(plan.status)["Ready"] == ("False", "Starting")
    assert [e.reason for e in plan.events] == ["DeploymentCreated"]


def test_rolled_out_deployment_is_ready_and_replanning_changes_nothing() -> None:
    body = idep(model="chat", stage="production")
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    world = _observed(plan)
    body = _body_after(body, plan)
    plan2 = plan_inferencedeployment(body, world, SETTINGS, NOW)
    assert plan2.apply == []
    assert conditions(plan2.status) == {
        "Ready": ("True", "Serving"),
        "Progressing": ("False", "RolloutComplete"),
    }
    plan3 = plan_inferencedeployment(_body_after(body, plan2), world, SETTINGS, NOW)
    assert plan3.empty


def _template(plan: Any) -> dict[str, Any]:
    template: dict[str, Any] = _applied(plan)["Deployment"]["spec"]["template"]
    return template


def test_adapter_added_without_dynamic_adapters_rolls_the_pods() -> None:
    """spec.dynamicAdapters false (the default): vLLM serves only the adapters it started with,
    so a changed list changes the config hash and rolls the pods (issue 8, item 10)."""
    body = idep(modelVersion="chat-v1")
    first = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    world = _observed(first)
    body["spec"]["adapters"] = [{"name": "tone", "modelVersion": "tone-v1"}]
    plan = plan_inferencedeployment(body, world, SETTINGS, NOW)
    assert "ConfigUpdated" in [e.reason for e in plan.events]
    config = ServingConfig.model_validate_json(
        _applied(plan)["ConfigMap"]["data"]["serving-config.json"]
    )
    assert [a.name for a in config.adapters] == ["tone"] and not config.dynamic_adapters
    old, new = _template(first), _template(plan)
    hash_key = "modelgarden.dev/config-hash"
    assert new["metadata"]["annotations"][hash_key] != old["metadata"]["annotations"][hash_key]
    mounts = new["spec"]["containers"][0]["volumeMounts"]
    assert any(m["mountPath"] == config.adapters[0].path and m["readOnly"] for m in mounts)
    rolled = _observed(plan)  # no NetworkPolicy or Service in this plan: already there
    rolled.service, rolled.network_policy = world.service, world.network_policy
    assert plan_inferencedeployment(body, rolled, SETTINGS, NOW).apply == []


def test_adapter_added_with_dynamic_adapters_changes_only_the_configmap() -> None:
    """spec.dynamicAdapters true: adapter claims are mounted whole and read-only, so a new
    adapter on them reaches the running launcher through the ConfigMap alone."""
    body = idep(
        modelVersion="chat-v1",
        dynamicAdapters=True,
        apiKeySecret={"name": "key"},
        adapters=[{"name": "ad", "modelVersion": "ad-v1"}],
    )
    first = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    mounts = _template(first)["spec"]["containers"][0]["volumeMounts"]
    claim = [m for m in mounts if m["name"] == "claim-artifacts"]
    assert claim == [
        {"name": "claim-artifacts", "mountPath": "/mnt/model-garden/artifacts", "readOnly": True}
    ]
    world = _observed(first)
    body["spec"]["adapters"].append({"name": "tone", "modelVersion": "tone-v1"})
    plan = plan_inferencedeployment(body, world, SETTINGS, NOW)
    assert [o["kind"] for o in plan.apply] == ["ConfigMap"]
    config = ServingConfig.model_validate_json(plan.apply[0]["data"]["serving-config.json"])
    assert [a.name for a in config.adapters] == ["ad", "tone"] and config.dynamic_adapters
    assert "loaded at run time" in next(e.message for e in plan.events)


def test_api_key_reaches_the_pod_by_env_and_as_a_file_never_in_the_config() -> None:
    body = idep(modelVersion="chat-v1", apiKeySecret={"name": "key", "key": "k"})
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    objs = _applied(plan)
    config = ServingConfig.model_validate_json(objs["ConfigMap"]["data"]["serving-config.json"])
    assert config.api_key_file == "/etc/model-garden-api-key/api-key"
    pod_spec = objs["Deployment"]["spec"]["template"]["spec"]
    (c,) = pod_spec["containers"]
    assert {
        "name": config.api_key_env,
        "valueFrom": {"secretKeyRef": {"name": "key", "key": "k"}},
    } in c["env"]
    assert {
        "name": "api-key",
        "mountPath": "/etc/model-garden-api-key",
        "readOnly": True,
    } in c["volumeMounts"]
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == "api-key"]
    assert volume["secret"]["secretName"] == "key"
    assert volume["secret"]["items"] == [{"key": "k", "path": "api-key"}]
    assert "--api-key" not in json.dumps(objs["Deployment"])


def test_storage_secret_reaches_the_server_by_secret_refs_only() -> None:
    """An s3:// or gated hf:// artifact: the server gets the Secret's keys as env references
    (AWS keys required, the rest optional); without it, none (the pod's own identity)."""
    body = idep(modelVersion="chat-v1", storageSecret="s3-creds")
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    (c,) = _applied(plan)["Deployment"]["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e}
    assert refs["AWS_ACCESS_KEY_ID"] == {
        "name": "s3-creds",
        "key": "AWS_ACCESS_KEY_ID",
        "optional": False,
    }
    assert refs["HF_TOKEN"]["optional"] is True and refs["HF_TOKEN"]["name"] == "s3-creds"
    assert all("value" not in e for e in c["env"] if e["name"].startswith("AWS_"))
    plain = plan_inferencedeployment(
        idep(modelVersion="chat-v1"),
        InferenceDeploymentWorld(model_versions=_versions()),
        SETTINGS,
        NOW,
    )
    (c,) = _applied(plain)["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert not any(e["name"].startswith("AWS_") for e in c["env"])


def test_server_pod_requests_scratch_and_bounds_every_emptydir() -> None:
    body = idep(modelVersion="chat-v1", resources={"memory": "24Gi"})
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    pod_spec = _template(plan)["spec"]
    (c,) = pod_spec["containers"]
    assert c["resources"]["requests"]["ephemeral-storage"] == "10Gi"
    assert "ephemeral-storage" not in c["resources"]["limits"]
    scratch = {v["name"]: v["emptyDir"] for v in pod_spec["volumes"] if "emptyDir" in v}
    assert scratch == {
        "tmp": {"sizeLimit": "4Gi"},
        "cache": {"sizeLimit": "100Gi"},
        "dshm": {"medium": "Memory", "sizeLimit": "24Gi"},
    }


def test_network_policy_follows_spec_and_is_deleted_when_disabled() -> None:
    peers = [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]
    body = idep(modelVersion="chat-v1", networkPolicy={"allowFrom": peers})
    first = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    policy = _applied(first)["NetworkPolicy"]
    assert policy["metadata"]["name"] == "bot"
    assert policy["metadata"]["labels"]["modelgarden.dev/inference-deployment-uid"] == "uid-bot"
    assert policy["spec"]["ingress"][0]["from"] == peers
    world = _observed(first)
    body["spec"]["networkPolicy"] = {"allowFrom": []}
    changed = plan_inferencedeployment(body, world, SETTINGS, NOW)
    assert "Deployment" not in _applied(changed)  # the pods do not roll
    assert changed.apply[0]["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
    body["spec"]["networkPolicy"] = {"enabled": False}
    off = plan_inferencedeployment(body, world, SETTINGS, NOW)
    assert "NetworkPolicy" not in _applied(off) and "Deployment" not in _applied(off)
    assert [(r.kind, r.name) for r in off.delete] == [("NetworkPolicy", "bot")]


def test_policy_refusal_creates_and_changes_nothing_and_says_so_once() -> None:
    """With no policy ConfigMap the default refuses a flag that runs remote code."""
    body = idep(modelVersion="chat-v1", engine={"extraArgs": ["--trust-remote-code"]})
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    assert plan.apply == [] and plan.delete == [] and plan.create == []
    assert conditions(plan.status)["Ready"] == ("False", "PolicyRefused")
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    assert "spec.engine.extraArgs[0] '--trust-remote-code'" in ready["message"]
    assert "deniedExtraArgs" in ready["message"]
    assert [e.reason for e in plan.events] == ["PolicyRefused"]
    again = plan_inferencedeployment(
        _body_after(body, plan), InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    assert again.empty


def test_version_promoted_rolls_the_deployment() -> None:
    body = idep(model="chat", stage="production")
    first = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    world = _observed(first)
    world.model_versions = [
        mvt("chat-v1", stage="none"),
        mvt("chat-v2", version=2, stage="production"),
    ]
    plan = plan_inferencedeployment(_body_after(body, first), world, SETTINGS, NOW)
    dep = _applied(plan)["Deployment"]
    assert (
        dep["spec"]["template"]["metadata"]["annotations"]["modelgarden.dev/model-version"]
        == "chat-v2"
    )
    assert {"ConfigUpdated", "RollingUpdate"} <= {e.reason for e in plan.events}
    assert conditions(plan.status)["Progressing"] == ("True", "RollingOut")


def test_engine_change_rolls_pods_but_replicas_change_does_not_touch_the_template() -> None:
    body = idep(modelVersion="chat-v1")
    first = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    world = _observed(first)
    template = _applied(first)["Deployment"]["spec"]["template"]
    body["spec"]["replicas"] = 3
    scaled = _applied(plan_inferencedeployment(body, world, SETTINGS, NOW))["Deployment"]
    assert scaled["spec"]["replicas"] == 3 and scaled["spec"]["template"] == template
    body["spec"]["engine"] = {"maxModelLen": 4096}
    changed = _applied(plan_inferencedeployment(body, world, SETTINGS, NOW))["Deployment"]
    assert (
        changed["spec"]["template"]["metadata"]["annotations"]
        != template["metadata"]["annotations"]
    )


def test_adapter_version_is_served_on_its_base() -> None:
    plan = plan_inferencedeployment(
        idep(modelVersion="tone-v1"),
        InferenceDeploymentWorld(model_versions=_versions()),
        SETTINGS,
        NOW,
    )
    config = ServingConfig.model_validate_json(
        _applied(plan)["ConfigMap"]["data"]["serving-config.json"]
    )
    assert config.model.path == "org/base" and [a.name for a in config.adapters] == ["tone"]


CASES = [
    (
        "missing version says so",
        idep(modelVersion="nope-v1"),
        {},
        {"Ready": ("False", "ModelVersionNotFound")},
    ),
    (
        "nothing at the followed stage",
        idep(model="chat", stage="production"),
        {"model_versions": [mvt("chat-v1")]},
        {"Ready": ("False", "ModelVersionNotFound")},
    ),
    (
        "version not verified yet waits",
        idep(modelVersion="chat-v1"),
        {"model_versions": [mvt("chat-v1", ready=False)]},
        {"Progressing": ("True", "WaitingForModelVersion")},
    ),
    (
        "missing adapter is reported",
        idep(modelVersion="chat-v1", adapters=[{"name": "x", "modelVersion": "x-v1"}]),
        {},
        {"AdaptersReady": ("False", "AdapterNotFound")},
    ),
    (
        "zero replicas is not ready",
        idep(modelVersion="chat-v1", replicas=0),
        {},
        {"Ready": ("False", "ScaledToZero")},
    ),
    (
        "read-write-once claim refuses more than one replica",
        idep(modelVersion="chat-v1", replicas=3),
        {"claims": {"artifacts": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
        {"ReplicasLimited": ("True", "ReadWriteOnceClaim")},
    ),
]


@pytest.mark.parametrize(
    ("body", "world", "conds"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_inference_deployment_planner(
    body: dict[str, Any], world: dict[str, Any], conds: dict[str, Any]
) -> None:
    world.setdefault("model_versions", _versions())
    plan = plan_inferencedeployment(body, InferenceDeploymentWorld(**world), SETTINGS, NOW)
    got = conditions(plan.status)
    for ctype, expected in conds.items():
        assert got[ctype] == expected


def test_read_write_once_claim_caps_the_deployment_at_one_recreated_pod() -> None:
    world = InferenceDeploymentWorld(
        model_versions=_versions(),
        claims={"artifacts": {"spec": {"accessModes": ["ReadWriteOnce"]}}},
    )
    dep = _applied(
        plan_inferencedeployment(idep(modelVersion="chat-v1", replicas=3), world, SETTINGS, NOW)
    )["Deployment"]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}


def test_read_write_many_claim_scales_out() -> None:
    world = InferenceDeploymentWorld(
        model_versions=_versions(),
        claims={"artifacts": {"spec": {"accessModes": ["ReadWriteMany"]}}},
    )
    plan = plan_inferencedeployment(idep(modelVersion="chat-v1", replicas=3), world, SETTINGS, NOW)
    assert _applied(plan)["Deployment"]["spec"]["replicas"] == 3
    assert "ReplicasLimited" not in conditions(plan.status)


def test_a_model_cache_claim_folder_is_where_the_server_downloads_models() -> None:
    """spec.modelCache: the folder mounted writable (made first by the pod's own user), and the
    launcher's staging root pointed at it; the served artifact stays read-only."""
    world = InferenceDeploymentWorld(
        model_versions=_versions(),
        claims={"model-cache": {"spec": {"accessModes": ["ReadWriteMany"]}}},
    )
    body = idep(modelVersion="chat-v1", replicas=2, modelCache="pvc://model-cache/team/hub")
    plan = plan_inferencedeployment(body, world, SETTINGS, NOW)
    pod = _applied(plan)["Deployment"]["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["MODEL_GARDEN_STAGING_DIR"] == "/mnt/model-garden/model-cache/team/hub"
    mounts = {m["mountPath"]: m for m in server["volumeMounts"]}
    cache = mounts["/mnt/model-garden/model-cache/team/hub"]
    assert (cache["subPath"], cache["readOnly"]) == ("team/hub", False)
    assert mounts["/mnt/model-garden/artifacts/team/chat/v1/merged"]["readOnly"] is True
    (prepare,) = pod["initContainers"]
    assert prepare["command"] == ["mkdir", "-p", "--", "/mnt/model-garden/model-cache/team/hub"]
    assert prepare["securityContext"]["runAsNonRoot"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["claim-model-cache"]["persistentVolumeClaim"] == {
        "claimName": "model-cache",
        "readOnly": False,
    }
    assert _applied(plan)["Deployment"]["spec"]["replicas"] == 2


def test_a_read_write_once_model_cache_limits_the_replicas_and_says_why() -> None:
    world = InferenceDeploymentWorld(
        model_versions=_versions(),
        claims={"model-cache": {"spec": {"accessModes": ["ReadWriteOnce"]}}},
    )
    body = idep(modelVersion="chat-v1", replicas=3, modelCache="pvc://model-cache")
    plan = plan_inferencedeployment(body, world, SETTINGS, NOW)
    assert _applied(plan)["Deployment"]["spec"]["replicas"] == 1
    assert conditions(plan.status)["ReplicasLimited"] == ("True", "ReadWriteOnceClaim")
    assert "model-cache" in next(
        c["message"] for c in plan.status["conditions"] if c["type"] == "ReplicasLimited"
    )


def test_without_a_model_cache_downloads_stay_in_the_pods_own_volume() -> None:
    plan = plan_inferencedeployment(
        idep(modelVersion="chat-v1"),
        InferenceDeploymentWorld(model_versions=_versions()),
        SETTINGS,
        NOW,
    )
    pod = _applied(plan)["Deployment"]["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    assert "MODEL_GARDEN_STAGING_DIR" not in {e["name"] for e in pod["containers"][0]["env"]}


@pytest.mark.parametrize("value", ["s3://bucket/cache", "pvc://cache/../other", "pvc://Cache"])
def test_a_model_cache_must_be_a_claim_folder(value: str) -> None:
    with pytest.raises(ValueError, match="modelCache") as info:
        InferenceDeployment.model_validate(idep(modelVersion="chat-v1", modelCache=value))
    assert "pvc://<claim>/<path>" in str(info.value)


# --- meter accumulation -----------------------------------------------------------------------


def _reading(
    joules: float, grams: float, tokens: int, window_grams: float = 0.0, window_tokens: int = 0
) -> ServingCarbon:
    """A pod's cumulative reading: a tenth of it idle, the window as given."""
    return ServingCarbon(
        energy_joules=joules,
        active_energy_joules=joules * 0.9,
        idle_energy_joules=joules * 0.1,
        emissions_grams=grams,
        active_emissions_grams=grams * 0.9,
        idle_emissions_grams=grams * 0.1,
        prompt_tokens=tokens,
        window_active_emissions_grams=window_grams,
        window_tokens=window_tokens,
        method="measured",
    )  # type: ignore[arg-type]


def test_meter_readings_accumulate_per_pod_deltas() -> None:
    carbon = accumulate(None, {"p1": _reading(3.6e6, 100, 10)}, "chat-v1")
    assert carbon["energyKwh"] == pytest.approx(1.0)  # a new pod counts from its first reading
    carbon = accumulate(carbon, {"p1": _reading(7.2e6, 300, 1010, 2.0, 1000)}, "chat-v1")
    assert carbon["energyKwh"] == pytest.approx(2.0) and carbon["emissionsKg"] == pytest.approx(0.3)
    assert carbon["idleEnergyKwh"] == pytest.approx(0.2)
    # Per token: the meters' windows, active energy only (not all emissions / all tokens: 297).
    assert carbon["tokens"] == 1010 and carbon["gPer1kTokens"] == pytest.approx(2.0)
    carbon = accumulate(carbon, {"p1": _reading(3.6e6, 50, 5)}, "chat-v1")  # meter lost its state
    assert carbon["energyKwh"] == pytest.approx(3.0) and carbon["tokens"] == 1015
    assert carbon["byModelVersion"][0]["emissionsKg"] == pytest.approx(0.35)


# --- adapters wait for their versions; a base stays while an adapter on it is served ---------


def test_adapter_whose_version_is_not_ready_is_left_out_and_named() -> None:
    versions = [mvt("chat-v1"), mvt("tone-v1", "tone", 1, fmt="adapter", ready=False)]
    body = idep(modelVersion="chat-v1", adapters=[{"name": "tone", "modelVersion": "tone-v1"}])
    plan = plan_inferencedeployment(
        body, InferenceDeploymentWorld(model_versions=versions), SETTINGS, NOW
    )
    config = ServingConfig.model_validate_json(
        _applied(plan)["ConfigMap"]["data"]["serving-config.json"]
    )
    assert config.adapters == []
    ready = next(c for c in plan.status["conditions"] if c["type"] == "AdaptersReady")  # type: ignore[index]
    assert ready["reason"] == "AdapterNotReady" and "tone-v1" in ready["message"]


def test_served_adapter_waits_for_its_base_version() -> None:
    versions = [
        mvt("base-v1", "base", 1, ready=False),
        mvt("tone-v1", "tone", 1, fmt="adapter", baseModel="base-v1"),
    ]
    plan = plan_inferencedeployment(
        idep(modelVersion="tone-v1"),
        InferenceDeploymentWorld(model_versions=versions),
        SETTINGS,
        NOW,
    )
    assert [o["kind"] for o in plan.apply] == ["NetworkPolicy"]  # no pod until both are Ready
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    assert ready["reason"] == "WaitingForModelVersion" and "base-v1" in ready["message"]


def test_base_version_of_a_served_adapter_cannot_be_deleted() -> None:
    versions = [
        mvt("base-v1", "base", 1),
        mvt("tone-v1", "tone", 1, fmt="adapter", baseModel="base-v1"),
    ]
    bot = InferenceDeployment.model_validate(
        idep(modelVersion="chat-v1", adapters=[{"name": "tone", "modelVersion": "tone-v1"}])
    )
    assert serving_deployments("base-v1", [bot], versions) == ["bot"]
    assert serving_deployments("chat-v2", [bot], versions) == []
    world = ModelVersionWorld(serving_deployments=["bot"])
    plan = plan_modelversion(mv("base-v1", "base", 1, deleting=True), world, SETTINGS, NOW)
    assert plan.patch == []  # the finalizer stays
    assert conditions(plan.status)["Ready"] == ("False", "DeletionBlocked")


# --- meter readings reach status.carbon through the planner -----------------------------------


def test_meter_poll_accumulates_into_status_carbon_attributed_to_the_served_version() -> None:
    body = idep(modelVersion="chat-v1", status={"modelVersion": "chat-v1"})
    reading = ServingCarbon.model_validate(
        {
            "energyJoules": 3.6e6,
            "activeEnergyJoules": 3.6e6,
            "emissionsGrams": 100.0,
            "activeEmissionsGrams": 100.0,
            "promptTokens": 4,
            "generationTokens": 6,
            "method": "measured",
        }
    )
    world = InferenceDeploymentWorld(
        model_versions=_versions(), readings={"pod-1": reading}, live_pods=["pod-1"]
    )
    plan = plan_inferencedeployment(body, world, SETTINGS, NOW)
    carbon = (plan.status or {})["carbon"]
    assert carbon["pods"][0]["uid"] == "pod-1"
    (share,) = carbon["byModelVersion"]
    assert share["modelVersion"] == "chat-v1" and share["tokens"] == 10
    unpolled = plan_inferencedeployment(
        _body_after(body, plan), InferenceDeploymentWorld(model_versions=_versions()), SETTINGS, NOW
    )
    assert "carbon" not in (unpolled.status or {})  # no poll: carbon left as it is
