"""InferenceDeployment: ConfigMap(ServingConfig) + Deployment + Service, and the serving status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from model_garden.api import InferenceDeployment
from model_garden.api.common import ConditionStatus, set_condition
from model_garden.api.contracts import (
    API_KEY_ENV,
    Identity,
    ServedArtifact,
    ServingConfig,
    ServingPorts,
)

from . import observe
from .plan import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_VERSION,
    LABEL_COMPONENT,
    LABEL_IDEP,
    MANAGED_BY,
    OPERATOR_NAME,
    Plan,
    child_meta,
    child_name,
    is_subset,
    stable_hash,
    status_patch,
)
from .podspec import (
    CACHE_ENV,
    compute,
    container_security_context,
    pod_security_context,
    scheduling,
    scratch_volumes,
)
from .settings import OperatorSettings
from .storage import Mounts, resolve

CONFIG_DIR = "/etc/model-garden"
CONFIG_KEY = "serving-config.json"
SERVER_CONTAINER = "server"
RWO_MODES = {"ReadWriteOnce", "ReadWriteOncePod"}


def config_map_name(name: str) -> str:
    return child_name(name, "serving-config")


@dataclass
class InferenceDeploymentWorld:
    model_versions: list[dict[str, Any]] = field(default_factory=list)
    """ModelVersions of the namespace (bodies)."""
    deployment: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    config_map: dict[str, Any] | None = None
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    """PersistentVolumeClaims of the namespace by name."""
    carbon: dict[str, Any] | None = None
    """status.carbon as the meter poller accumulated it (None: leave as is)."""


def resolve_model_version(
    idep: InferenceDeployment, model_versions: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The ModelVersion to serve: the named one, or the newest at the followed stage."""
    spec = idep.spec
    if spec.model_version:
        return next(
            (mv for mv in model_versions if mv["metadata"]["name"] == spec.model_version), None
        )
    candidates = [
        mv
        for mv in model_versions
        if mv["spec"].get("model") == spec.model
        and mv["spec"].get("stage") == spec.stage
        and not mv["metadata"].get("deletionTimestamp")
    ]
    return max(candidates, key=lambda mv: int(mv["spec"]["version"]), default=None)


def _by_name(model_versions: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((mv for mv in model_versions if mv["metadata"]["name"] == name), None)


def build_serving_config(
    idep: InferenceDeployment,
    mv: dict[str, Any],
    model_versions: list[dict[str, Any]],
    settings: OperatorSettings,
    mounts: Mounts,
) -> tuple[ServingConfig, list[str]]:
    """The ServingConfig, and the adapters left out because their ModelVersion is missing."""
    artifact = mv["spec"]["artifact"]
    served = idep.spec.served_model_name or mv["spec"]["model"]
    adapters: list[ServedArtifact] = []
    if artifact["format"] == "adapter":
        base = str(artifact.get("baseModel") or "")
        base_mv = _by_name(model_versions, base)
        base_path = mounts.add(resolve(base_mv["spec"]["artifact"]["uri"] if base_mv else base))
        model = ServedArtifact(name=base, path=base_path, model_version=base_mv and base)
        adapters.append(
            ServedArtifact(
                name=served,
                path=mounts.add(resolve(artifact["uri"])),
                model_version=mv["metadata"]["name"],
            )
        )
    else:
        model = ServedArtifact(
            name=served,
            path=mounts.add(resolve(artifact["uri"])),
            model_version=mv["metadata"]["name"],
        )
    missing: list[str] = []
    for adapter in idep.spec.adapters:
        amv = _by_name(model_versions, adapter.model_version)
        if amv is None:
            missing.append(adapter.model_version)
            continue
        adapters.append(
            ServedArtifact(
                name=adapter.name,
                path=mounts.add(resolve(amv["spec"]["artifact"]["uri"])),
                model_version=adapter.model_version,
            )
        )
    carbon = idep.spec.carbon
    config = ServingConfig(
        deployment=Identity(
            name=idep.metadata.name,
            namespace=idep.metadata.namespace or "default",
            uid=idep.metadata.uid,
        ),
        spec=idep.spec,
        model=model,
        adapters=adapters,
        ports=ServingPorts(meter=settings.meter_port),
        country=carbon.country or settings.default_country,
        region=carbon.region or settings.default_region,
        api_key_env=API_KEY_ENV,
    )
    return config, missing


def restart_hash(config: ServingConfig) -> str:
    """Hash of what the server reads only at start: everything but the adapters (hot-loaded)."""
    wire = config.to_wire()
    wire.pop("adapters", None)
    wire.get("spec", {}).pop("adapters", None)
    wire.get("spec", {}).pop("replicas", None)
    return stable_hash(wire)


def read_write_once_claims(mounts: Mounts, claims: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for claim in mounts.claims:
        modes = set(((claims.get(claim) or {}).get("spec") or {}).get("accessModes") or [])
        if modes and modes <= RWO_MODES:
            out.append(claim)
    return sorted(out)


def _labels(name: str) -> dict[str, str]:
    return {MANAGED_BY: OPERATOR_NAME, LABEL_IDEP: name, LABEL_COMPONENT: "server"}


def selector(name: str) -> str:
    return f"{LABEL_IDEP}={name}"


def build_config_map(body: dict[str, Any], config: ServingConfig) -> dict[str, Any]:
    name = body["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_meta(body, config_map_name(name), _labels(name)),
        "data": {CONFIG_KEY: config.model_dump_json(by_alias=True, exclude_none=True, indent=2)},
    }


def build_deployment(
    body: dict[str, Any],
    idep: InferenceDeployment,
    config: ServingConfig,
    mounts: Mounts,
    replicas: int,
    single_writer: bool,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """apps/v1 Deployment running ``python -m model_garden.serving --config <mounted file>``."""
    name = idep.metadata.name
    spec = idep.spec
    env: list[dict[str, Any]] = list(CACHE_ENV)
    if spec.api_key_secret is not None:
        env.append(
            {
                "name": API_KEY_ENV,
                "valueFrom": {
                    "secretKeyRef": {
                        "name": spec.api_key_secret.name,
                        "key": spec.api_key_secret.key,
                    }
                },
            }
        )
    resources = spec.resources
    if resources.gpus and spec.engine.tensor_parallel_size > resources.gpus:
        resources = resources.model_copy(update={"gpus": spec.engine.tensor_parallel_size})
    scratch, scratch_mounts = scratch_volumes()
    health = {"path": "/health", "port": "http"}
    container = {
        "name": SERVER_CONTAINER,
        "image": spec.engine.image or settings.server_image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "model_garden.serving"],
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "env": env,
        "ports": [
            {"name": "http", "containerPort": config.ports.api},
            {"name": "metrics", "containerPort": config.ports.meter},
        ],
        "resources": compute(resources, settings.server_cpu, settings.server_memory),
        "securityContext": container_security_context(),
        "startupProbe": {"httpGet": health, "periodSeconds": 10, "failureThreshold": 180},
        "readinessProbe": {"httpGet": health, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"httpGet": health, "periodSeconds": 20, "failureThreshold": 3},
        # A directory mount (not subPath) so adapter changes reach the running launcher.
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
        + mounts.volume_mounts()
        + scratch_mounts,
    }
    labels = _labels(name)
    strategy: dict[str, Any] = (
        {"type": "Recreate"}
        if single_writer
        else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_meta(body, name, labels),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {LABEL_IDEP: name}},
            "strategy": strategy,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        ANNOTATION_VERSION: config.model.model_version or config.model.name,
                        ANNOTATION_CONFIG_HASH: restart_hash(config),
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(),
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": config_map_name(name)}}]
                    + mounts.volumes()
                    + scratch,
                    **scheduling(resources),
                },
            },
        },
    }


def build_service(body: dict[str, Any], config: ServingConfig) -> dict[str, Any]:
    name = body["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_meta(body, name, _labels(name)),
        "spec": {
            "type": "ClusterIP",
            "selector": {LABEL_IDEP: name},
            "ports": [
                {"name": "http", "port": config.ports.api, "targetPort": "http", "protocol": "TCP"},
                {
                    "name": "metrics",
                    "port": config.ports.meter,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                },
            ],
        },
    }


def endpoint(name: str, namespace: str, port: int) -> str:
    return f"http://{name}.{namespace}.svc:{port}/v1"


def plan_inferencedeployment(
    body: dict[str, Any],
    world: InferenceDeploymentWorld,
    settings: OperatorSettings,
    now: datetime,
) -> Plan:
    """Serve the resolved ModelVersion; roll pods only when what they read at start changes."""
    idep = InferenceDeployment.model_validate(body)
    plan = Plan()
    name = idep.metadata.name
    ns = idep.metadata.namespace or "default"
    gen = idep.metadata.generation
    conds = list(idep.status.conditions)
    current = idep.status.to_wire()
    fields: dict[str, Any] = dict(current)
    fields["observedGeneration"] = gen
    fields["selector"] = selector(name)
    if world.carbon is not None:
        fields["carbon"] = world.carbon

    def set_cond(type: str, status: ConditionStatus, reason: str, message: str) -> bool:
        nonlocal conds
        before = next((c for c in conds if c.type == type), None)
        conds = set_condition(conds, type, status, reason, message, gen, now)
        return before is None or before.status != status or before.reason != reason

    def finish() -> Plan:
        fields["conditions"] = [c.to_wire() for c in conds]
        plan.status = status_patch(current, fields)
        return plan

    mv = resolve_model_version(idep, world.model_versions)
    if mv is None:
        wanted = idep.spec.model_version or f"model {idep.spec.model} at stage {idep.spec.stage}"
        message = f"No ModelVersion to serve: {wanted} was not found in namespace {ns}."
        if set_cond("Ready", ConditionStatus.FALSE, "ModelVersionNotFound", message):
            plan.event("Warning", "ModelVersionNotFound", message)
        set_cond("Progressing", ConditionStatus.FALSE, "ModelVersionNotFound", message)
        return finish()
    mv_name = mv["metadata"]["name"]
    if not observe.condition_true(mv, "Ready"):
        message = f"Waiting for ModelVersion {mv_name} to become Ready (artifact verification)."
        set_cond("Progressing", ConditionStatus.TRUE, "WaitingForModelVersion", message)
        if world.deployment is None:
            set_cond("Ready", ConditionStatus.FALSE, "WaitingForModelVersion", message)
            return finish()
        mv = None  # keep serving what runs until the new version is ready

    deployment = world.deployment
    if mv is None:
        return finish()

    mounts = Mounts()
    config, missing = build_serving_config(idep, mv, world.model_versions, settings, mounts)
    rwo = read_write_once_claims(mounts, world.claims)
    replicas = idep.spec.replicas
    if rwo and replicas > 1:
        message = (
            f"Serving 1 of {replicas} replicas: claim(s) {', '.join(rwo)} are ReadWriteOnce, so"
            " only one pod can mount them. Copy the artifact to a ReadWriteMany or ReadOnlyMany"
            " claim to scale out."
        )
        if set_cond("ReplicasLimited", ConditionStatus.TRUE, "ReadWriteOnceClaim", message):
            plan.event("Warning", "ReplicasLimited", message)
        replicas = 1
    elif any(c.type == "ReplicasLimited" for c in conds):
        set_cond(
            "ReplicasLimited",
            ConditionStatus.FALSE,
            "NotLimited",
            "All replicas can mount the artifact.",
        )

    desired_cm = build_config_map(body, config)
    desired_deploy = build_deployment(body, idep, config, mounts, replicas, bool(rwo), settings)
    desired_svc = build_service(body, config)
    if world.config_map is None or not is_subset(desired_cm["data"], world.config_map.get("data")):
        plan.apply.append(desired_cm)
        if world.config_map is not None and deployment is not None:
            plan.event(
                "Normal",
                "ConfigUpdated",
                "Serving config updated (adapters are hot-loaded, no restart).",
            )
    if deployment is None or not is_subset(desired_deploy["spec"], deployment.get("spec")):
        plan.apply.append(desired_deploy)
        old = (
            ((((deployment or {}).get("spec") or {}).get("template") or {}).get("metadata") or {})
            .get("annotations", {})
            .get(ANNOTATION_VERSION)
        )
        if deployment is None:
            plan.event(
                "Normal", "DeploymentCreated", f"Serving {mv_name} with {replicas} replica(s)."
            )
        elif old and old != mv_name:
            plan.event("Normal", "RollingUpdate", f"Rolling out {mv_name} (was {old}).")
    if world.service is None or not is_subset(desired_svc["spec"], world.service.get("spec")):
        plan.apply.append(desired_svc)
    if missing:
        message = f"Adapter ModelVersion(s) {', '.join(missing)} not found; serving without them."
        if set_cond("AdaptersReady", ConditionStatus.FALSE, "AdapterNotFound", message):
            plan.event("Warning", "AdapterNotFound", message)
    elif idep.spec.adapters:
        set_cond("AdaptersReady", ConditionStatus.TRUE, "Loaded", "Every adapter is configured.")

    fields["endpoint"] = endpoint(name, ns, config.ports.api)
    fields["modelVersion"] = mv_name
    fields["servedModels"] = [config.model.name, *(a.name for a in config.adapters)]
    dstatus = (deployment or {}).get("status") or {}
    ready = int(dstatus.get("readyReplicas") or 0)
    fields["replicas"] = int(dstatus.get("replicas") or 0)
    fields["readyReplicas"] = ready
    updated = int(dstatus.get("updatedReplicas") or 0)
    rolled = (
        deployment is not None
        and not any(o is desired_deploy for o in plan.apply)
        and int(dstatus.get("observedGeneration") or 0)
        >= int((deployment.get("metadata") or {}).get("generation") or 0)
        and updated >= replicas
        and ready >= replicas
    )
    if rolled:
        set_cond(
            "Progressing", ConditionStatus.FALSE, "RolloutComplete", f"{mv_name} is rolled out."
        )
    else:
        set_cond(
            "Progressing",
            ConditionStatus.TRUE,
            "RollingOut",
            f"Rolling out {mv_name}: {updated} of {replicas} pod(s) updated, {ready} ready.",
        )
    if replicas == 0:
        set_cond("Ready", ConditionStatus.FALSE, "ScaledToZero", "spec.replicas is 0.")
    elif ready >= 1:
        if set_cond(
            "Ready",
            ConditionStatus.TRUE,
            "Serving",
            f"Serving {mv_name} at {fields['endpoint']} ({ready}/{replicas} ready).",
        ):
            plan.event("Normal", "Ready", f"Serving {mv_name} at {fields['endpoint']}.")
    else:
        set_cond(
            "Ready",
            ConditionStatus.FALSE,
            "Starting",
            f"No server pod is ready yet (0/{replicas}); vLLM loads the model first.",
        )
    return finish()
