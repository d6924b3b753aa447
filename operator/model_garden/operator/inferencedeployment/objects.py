"""InferenceDeployment children: the ConfigMap holding its ServingConfig, the Deployment
running the serving launcher, and the Service. Pure builders: same inputs, same objects."""

from __future__ import annotations

from typing import Any

from model_garden.api import InferenceDeployment, ModelVersion
from model_garden.api.common import Resources
from model_garden.api.contracts import (
    API_KEY_ENV,
    Identity,
    ServedArtifact,
    ServingConfig,
    ServingPorts,
)
from model_garden.api.labels import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_VERSION,
    LABEL_IDEP,
    LABEL_IDEP_UID,
)
from model_garden.storage.credentials import s3_env
from model_garden.storage.staging import STAGING_ENV

from ..networkpolicy import build_network_policy
from ..observe import version_ready
from ..plan import child_meta, child_name, owner_labels, stable_hash
from ..podspec import (
    API_KEY_FILE,
    CACHE_ENV,
    api_key_env,
    api_key_volume,
    compute,
    container_security_context,
    pod_security_context,
    scheduling,
    scratch_volumes,
)
from ..settings import OperatorSettings
from ..storage import Mounts, resolve
from .traffic import LABEL_SERVING_VERSION, deployment_name

CONFIG_DIR = "/etc/model-garden"
CONFIG_KEY = "serving-config.json"
SERVER_CONTAINER = "server"
RWO_MODES = {"ReadWriteOnce", "ReadWriteOncePod"}


def config_map_name(name: str) -> str:
    return child_name(name, "serving-config")


def by_name(model_versions: list[ModelVersion], name: str) -> ModelVersion | None:
    return next((mv for mv in model_versions if mv.metadata.name == name), None)


def build_serving_config(
    idep: InferenceDeployment,
    mv: ModelVersion,
    model_versions: list[ModelVersion],
    settings: OperatorSettings,
    mounts: Mounts,
) -> tuple[ServingConfig, list[str], list[str]]:
    """The ServingConfig, and the adapters left out: ModelVersions missing, and not Ready yet.

    Registers every path the server reads in ``mounts`` (the Deployment mounts only those).
    """
    model, adapters = _served_artifacts(idep, mv, model_versions, mounts)
    listed, missing, waiting = _listed_adapters(idep, model_versions, mounts)
    if idep.spec.model_cache is not None:  # the one folder the server writes (see model_cache_env)
        mounts.add(resolve(idep.spec.model_cache), writable=True)
    carbon = idep.spec.carbon
    config = ServingConfig(
        deployment=Identity(
            name=idep.metadata.name,
            namespace=idep.metadata.namespace or "default",
            uid=idep.metadata.uid,
        ),
        spec=idep.spec,
        model=model,
        adapters=adapters + listed,
        ports=ServingPorts(api=settings.api_port, meter=settings.meter_port),
        country=carbon.country or settings.default_country,
        region=carbon.region or settings.default_region,
        grid_overrides=settings.grid_overrides,
        kepler_prometheus_url=settings.carbon_kepler_prometheus_url,
        api_key_env=API_KEY_ENV,
        api_key_file=API_KEY_FILE if idep.spec.api_key_secret is not None else None,
        dynamic_adapters=idep.spec.dynamic_adapters,
    )
    return config, missing, waiting


def _served_artifacts(
    idep: InferenceDeployment,
    mv: ModelVersion,
    model_versions: list[ModelVersion],
    mounts: Mounts,
) -> tuple[ServedArtifact, list[ServedArtifact]]:
    """The model vLLM loads, and ``mv`` itself as the first adapter when it is one: an adapter
    version serves its base model (a ModelVersion's artifact, else the hub id or URI)."""
    artifact = mv.spec.artifact
    served = idep.spec.served_model_name or mv.spec.model
    if str(artifact.format) != "adapter":
        path = mounts.add(resolve(artifact.uri))
        return ServedArtifact(name=served, path=path, model_version=mv.metadata.name), []
    base = str(artifact.base_model or "")
    base_mv = by_name(model_versions, base)
    base_path = mounts.add(resolve(base_mv.spec.artifact.uri if base_mv else base))
    model = ServedArtifact(name=base, path=base_path, model_version=base if base_mv else None)
    adapter = ServedArtifact(
        name=served, path=mounts.add(resolve(artifact.uri)), model_version=mv.metadata.name
    )
    return model, [adapter]


def _listed_adapters(
    idep: InferenceDeployment, model_versions: list[ModelVersion], mounts: Mounts
) -> tuple[list[ServedArtifact], list[str], list[str]]:
    """``spec.adapters`` whose ModelVersion is Ready (only a verified artifact is served), and
    the names of those missing and of those not Ready yet."""
    adapters: list[ServedArtifact] = []
    missing: list[str] = []
    waiting: list[str] = []
    for adapter in idep.spec.adapters:
        amv = by_name(model_versions, adapter.model_version)
        if amv is None:
            missing.append(adapter.model_version)
            continue
        if not version_ready(amv):
            waiting.append(adapter.model_version)
            continue
        location = resolve(amv.spec.artifact.uri)
        if idep.spec.dynamic_adapters and location.claim:
            # Adapters loaded at run time: the whole claim, read-only, so a change to the list
            # changes only the ConfigMap (the launcher loads it), never the pods.
            mounts.add_claim(location.claim)
        adapters.append(
            ServedArtifact(
                name=adapter.name,
                path=mounts.add(location),
                model_version=adapter.model_version,
            )
        )
    return adapters, missing, waiting


def restart_hash(config: ServingConfig) -> str:
    """Hash of what the server reads only at start; a change rolls the pods.

    With ``dynamic_adapters`` the adapter list is left out (the launcher loads and drops
    adapters live); without, vLLM serves only the adapters it started with, so a changed list
    must roll the pods. Replicas, autoscaling, the traffic split and the NetworkPolicy never
    reach the pods (a promotion must not restart the version it promotes).
    """
    wire = config.to_wire()
    spec = wire.get("spec", {})
    if config.dynamic_adapters:
        wire.pop("adapters", None)
        spec.pop("adapters", None)
    for key in ("replicas", "networkPolicy", "autoscaling", "traffic", "rollout"):
        spec.pop(key, None)
    return stable_hash(wire)


def labels(body: dict[str, Any]) -> dict[str, str]:
    """Labels of every child; the deployment's uid ties pods and meters to this very resource."""
    meta = body["metadata"]
    return owner_labels("server", (LABEL_IDEP, meta["name"]), (LABEL_IDEP_UID, meta.get("uid")))


def selector(name: str) -> str:
    return f"{LABEL_IDEP}={name}"


def build_config_map(
    body: dict[str, Any], config: ServingConfig, deployment: str | None = None
) -> dict[str, Any]:
    """The ServingConfig of ``deployment`` (default: the one Deployment, named as ``body``)."""
    name = deployment or body["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_meta(body, config_map_name(name), labels(body)),
        "data": {CONFIG_KEY: config.model_dump_json(by_alias=True, exclude_none=True, indent=2)},
    }


def build_deployment(
    body: dict[str, Any],
    idep: InferenceDeployment,
    config: ServingConfig,
    mounts: Mounts,
    replicas: int | None,
    single_writer: bool,
    settings: OperatorSettings,
    version: str | None = None,
) -> dict[str, Any]:
    """apps/v1 Deployment running ``python -m model_garden.serving --config <mounted file>``.

    ``single_writer`` (a ReadWriteOnce claim) makes the rollout Recreate: a surge pod could not
    mount the claim. The pod template's annotations carry the served version (for people and
    the RollingUpdate event) and the restart hash (a change rolls the pods). ``replicas`` None
    leaves spec.replicas out: an autoscaler owns it, and server-side apply then never resets
    it. ``version`` (a traffic split) names the Deployment after the version and labels its
    pods with it; its rollout gets spec.rollout's deadline (the roll back reads the verdict).
    """
    name = idep.metadata.name
    pod_labels = labels(body)
    match = {LABEL_IDEP: name}
    extra: dict[str, Any] = {}
    if version is not None:
        name = deployment_name(name, version)
        pod_labels[LABEL_SERVING_VERSION] = match[LABEL_SERVING_VERSION] = version
        extra["progressDeadlineSeconds"] = idep.spec.rollout.progress_deadline_seconds
    if replicas is not None:
        extra["replicas"] = replicas
    resources = server_resources(idep)
    key_volumes, key_mounts = _api_key_volumes(idep)
    scratch, scratch_mounts = scratch_volumes(
        settings.tmp_size_limit,
        settings.cache_size_limit,
        shm_size_limit=resources.memory or settings.server_memory,
    )
    container = server_container(idep, config, resources, settings)
    container["volumeMounts"] += key_mounts + mounts.volume_mounts() + scratch_mounts
    # spec.modelCache's folder, made as the pod's user before the server mounts it
    prepare = mounts.prepare_container(container["image"], container_security_context())
    init = {"initContainers": [prepare]} if prepare is not None else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_meta(body, name, pod_labels),
        "spec": {
            **extra,
            "selector": {"matchLabels": match},
            "strategy": _strategy(single_writer),
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        ANNOTATION_VERSION: config.model.model_version or config.model.name,
                        ANNOTATION_CONFIG_HASH: restart_hash(config),
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(),
                    "terminationGracePeriodSeconds": 60,
                    **init,
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": config_map_name(name)}}]
                    + key_volumes
                    + mounts.volumes()
                    + scratch,
                    **scheduling(resources, settings.gpu_node_selector, settings.gpu_tolerations),
                },
            },
        },
    }


def server_resources(idep: InferenceDeployment) -> Resources:
    """``spec.resources``, with at least as many GPUs as the tensor-parallel size needs."""
    resources = idep.spec.resources
    if resources.gpus and idep.spec.engine.tensor_parallel_size > resources.gpus:
        resources = resources.model_copy(update={"gpus": idep.spec.engine.tensor_parallel_size})
    return resources


def _api_key_volumes(
    idep: InferenceDeployment,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The API key Secret as a file the launcher watches (so a rotated Secret restarts vLLM
    with the new key); none without ``spec.apiKeySecret``."""
    if idep.spec.api_key_secret is None:
        return [], []
    volume, mount = api_key_volume(idep.spec.api_key_secret)
    return [volume], [mount]


def server_container(
    idep: InferenceDeployment,
    config: ServingConfig,
    resources: Resources,
    settings: OperatorSettings,
) -> dict[str, Any]:
    """The server container, mounting its config directory; the caller adds the other mounts.

    The API key reaches vLLM by environment (``secretKeyRef``: the operator never reads the
    Secret, and the key is never on argv, readable in /proc).
    """
    spec = idep.spec
    env: list[dict[str, Any]] = list(CACHE_ENV)
    if spec.api_key_secret is not None:
        env.append(api_key_env(spec.api_key_secret, config.api_key_env))
    env += s3_env(spec.storage_secret, hub=True)
    env += model_cache_env(idep)
    health = {"path": "/health", "port": "http"}
    return {
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
        "resources": compute(
            resources,
            settings.server_cpu,
            settings.server_memory,
            settings.ephemeral_storage_request,
        ),
        "securityContext": container_security_context(),
        "startupProbe": {"httpGet": health, "periodSeconds": 10, "failureThreshold": 180},
        "readinessProbe": {"httpGet": health, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"httpGet": health, "periodSeconds": 20, "failureThreshold": 3},
        # A directory mount (not subPath) so adapter changes reach the running launcher.
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }


def model_cache_env(idep: InferenceDeployment) -> list[dict[str, Any]]:
    """With ``spec.modelCache``, the launcher downloads s3:// and hf:// models into that claim
    folder (mounted writable by :func:`build_serving_config`) rather than the pod's emptyDir,
    so replicas and restarts reuse them: downloads land under temporary names and are renamed
    once complete, and the Hub client locks its files, so pods share the folder safely."""
    if idep.spec.model_cache is None:
        return []
    return [{"name": STAGING_ENV, "value": resolve(idep.spec.model_cache).path}]


def _strategy(single_writer: bool) -> dict[str, Any]:
    """Recreate when one pod at a time can mount the claim; else roll with no capacity lost."""
    if single_writer:
        return {"type": "Recreate"}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def served_version(deployment: dict[str, Any] | None) -> str | None:
    """The ModelVersion a running Deployment's pod template serves (its annotation)."""
    template = ((deployment or {}).get("spec") or {}).get("template") or {}
    value = ((template.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_VERSION)
    return str(value) if value else None


def build_service(
    body: dict[str, Any],
    config: ServingConfig,
    name: str | None = None,
    select: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ClusterIP Service (default: the deployment's own, selecting all its pods)."""
    name = name or body["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_meta(body, name, labels(body)),
        "spec": {
            "type": "ClusterIP",
            "selector": select or {LABEL_IDEP: body["metadata"]["name"]},
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


def build_policy(
    body: dict[str, Any], idep: InferenceDeployment, settings: OperatorSettings
) -> dict[str, Any]:
    """The NetworkPolicy of the server pods (``spec.networkPolicy``; :mod:`..networkpolicy`)."""
    ports = ServingPorts(api=settings.api_port, meter=settings.meter_port)
    return build_network_policy(
        body,
        labels(body),
        {LABEL_IDEP: idep.metadata.name},
        ports.api,
        ports.meter,
        [peer.to_wire() for peer in idep.spec.network_policy.allow_from],
        settings,
    )


def endpoint(name: str, namespace: str, port: int) -> str:
    return f"http://{name}.{namespace}.svc:{port}/v1"
