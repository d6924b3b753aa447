"""The InferenceDeployment planner: serve the resolved ModelVersion, roll pods only when what
they read at start changes, keep the serving status and the meters' carbon current."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from model_garden.api import InferenceDeployment, ModelVersion
from model_garden.api.common import ConditionStatus
from model_garden.api.contracts import ServingCarbon
from model_garden.api.labels import ANNOTATION_VERSION, LABEL_IDEP

from ..plan import ObjectRef, Plan, is_subset
from ..policy import Policy, PolicyError, check_inferencedeployment, in_force, refusals_message
from ..servingcarbon import accumulate
from ..settings import OperatorSettings
from ..status import StatusDraft
from ..storage import Mounts
from .objects import (
    RWO_MODES,
    build_config_map,
    build_deployment,
    build_policy,
    build_service,
    build_serving_config,
    by_name,
    is_ready,
)


@dataclass
class InferenceDeploymentWorld:
    """What the handler observed for one InferenceDeployment."""

    model_versions: list[ModelVersion] = field(default_factory=list)
    """ModelVersions of the namespace, parsed."""
    deployment: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    config_map: dict[str, Any] | None = None
    claims: dict[str, dict[str, Any]] = field(default_factory=dict)
    """PersistentVolumeClaims of the namespace by name."""
    readings: Mapping[str, ServingCarbon] | None = None
    """This poll's meter readings by pod uid (None: no poll this time, carbon stays as is)."""
    live_pods: list[str] | None = None
    """uids of the deployment's pods that exist (baselines of others are dropped)."""
    network_policy: dict[str, Any] | None = None
    """Its NetworkPolicy (matched by the deployment's uid)."""
    policy: Policy | PolicyError | None = None
    """The admin policy in force (None: the documented default, no ConfigMap)."""


def resolve_model_version(
    idep: InferenceDeployment, model_versions: list[ModelVersion]
) -> ModelVersion | None:
    """The ModelVersion to serve: the named one, or the newest at the followed stage."""
    spec = idep.spec
    if spec.model_version:
        return by_name(model_versions, spec.model_version)
    candidates = [
        mv
        for mv in model_versions
        if mv.spec.model == spec.model
        and str(mv.spec.stage) == str(spec.stage)
        and not (mv.metadata.model_extra or {}).get("deletionTimestamp")
    ]
    return max(candidates, key=lambda mv: mv.spec.version, default=None)


def read_write_once_claims(mounts: Mounts, claims: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for claim in mounts.claims:
        modes = set(((claims.get(claim) or {}).get("spec") or {}).get("accessModes") or [])
        if modes and modes <= RWO_MODES:
            out.append(claim)
    return sorted(out)


def selector(name: str) -> str:
    return f"{LABEL_IDEP}={name}"


def endpoint(name: str, namespace: str, port: int) -> str:
    return f"http://{name}.{namespace}.svc:{port}/v1"


def _not_ready(mv: ModelVersion, model_versions: list[ModelVersion]) -> str | None:
    """The version this one waits for: itself, or the base ModelVersion of an adapter."""
    if not is_ready(mv):
        return mv.metadata.name
    base = by_name(model_versions, str(mv.spec.artifact.base_model or ""))
    if str(mv.spec.artifact.format) == "adapter" and base is not None and not is_ready(base):
        return base.metadata.name
    return None


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
    st = StatusDraft(idep, now)
    st.fields["selector"] = selector(name)
    if world.readings is not None:
        st.fields["carbon"] = accumulate(
            st.current.get("carbon"),
            world.readings,
            st.current.get("modelVersion"),
            world.live_pods,
        )
    set_cond = st.set_condition

    def finish() -> Plan:
        plan.status = st.patch()
        return plan

    refusals = check_inferencedeployment(idep.spec, in_force(world.policy, settings))
    if refusals:  # what runs keeps running; nothing is created or changed for this spec
        message = f"Refused by the admin policy: {refusals_message(refusals)}"
        if set_cond("Ready", ConditionStatus.FALSE, "PolicyRefused", message):
            plan.event("Warning", "PolicyRefused", message)
        set_cond("Progressing", ConditionStatus.FALSE, "PolicyRefused", message)
        return finish()
    _plan_network_policy(plan, body, idep, world, settings)

    mv = resolve_model_version(idep, world.model_versions)
    if mv is None:
        wanted = idep.spec.model_version or f"model {idep.spec.model} at stage {idep.spec.stage}"
        message = f"No ModelVersion to serve: {wanted} was not found in namespace {ns}."
        if set_cond("Ready", ConditionStatus.FALSE, "ModelVersionNotFound", message):
            plan.event("Warning", "ModelVersionNotFound", message)
        set_cond("Progressing", ConditionStatus.FALSE, "ModelVersionNotFound", message)
        return finish()
    mv_name = mv.metadata.name
    waits_for = _not_ready(mv, world.model_versions)
    if waits_for is not None:
        message = f"Waiting for ModelVersion {waits_for} to become Ready (artifact verification)."
        set_cond("Progressing", ConditionStatus.TRUE, "WaitingForModelVersion", message)
        if world.deployment is None:
            set_cond("Ready", ConditionStatus.FALSE, "WaitingForModelVersion", message)
            return finish()
        mv = None  # keep serving what runs until the new version is ready

    deployment = world.deployment
    if mv is None:
        return finish()

    mounts = Mounts()
    config, missing, waiting = build_serving_config(
        idep, mv, world.model_versions, settings, mounts
    )
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
    elif st.condition("ReplicasLimited") is not None:
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
            how = (
                "adapters are loaded at run time, no restart"
                if idep.spec.dynamic_adapters
                else "the pods roll when what vLLM reads at start changed"
            )
            plan.event("Normal", "ConfigUpdated", f"Serving config updated ({how}).")
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
    elif waiting:
        message = (
            f"Waiting for adapter ModelVersion(s) {', '.join(waiting)} to become Ready (artifact"
            " verification); serving without them until then."
        )
        if set_cond("AdaptersReady", ConditionStatus.FALSE, "AdapterNotReady", message):
            plan.event("Normal", "AdapterNotReady", message)
    elif idep.spec.adapters:
        set_cond("AdaptersReady", ConditionStatus.TRUE, "Loaded", "Every adapter is configured.")

    st.fields["endpoint"] = endpoint(name, ns, config.ports.api)
    st.fields["modelVersion"] = mv_name
    st.fields["servedModels"] = [config.model.name, *(a.name for a in config.adapters)]
    dstatus = (deployment or {}).get("status") or {}
    ready = int(dstatus.get("readyReplicas") or 0)
    st.fields["replicas"] = int(dstatus.get("replicas") or 0)
    st.fields["readyReplicas"] = ready
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
            f"Serving {mv_name} at {st.fields['endpoint']} ({ready}/{replicas} ready).",
        ):
            plan.event("Normal", "Ready", f"Serving {mv_name} at {st.fields['endpoint']}.")
    else:
        set_cond(
            "Ready",
            ConditionStatus.FALSE,
            "Starting",
            f"No server pod is ready yet (0/{replicas}); vLLM loads the model first.",
        )
    return finish()


def _plan_network_policy(
    plan: Plan,
    body: dict[str, Any],
    idep: InferenceDeployment,
    world: InferenceDeploymentWorld,
    settings: OperatorSettings,
) -> None:
    """Apply the NetworkPolicy (before any pod exists), or delete it when it is disabled."""
    if idep.spec.network_policy.enabled:
        desired = build_policy(body, idep, settings)
        observed = world.network_policy
        if observed is None or not is_subset(desired["spec"], observed.get("spec")):
            plan.apply.append(desired)
    elif world.network_policy is not None:
        meta = world.network_policy["metadata"]
        plan.delete.append(
            ObjectRef("networking.k8s.io/v1", "NetworkPolicy", meta["namespace"], meta["name"])
        )
