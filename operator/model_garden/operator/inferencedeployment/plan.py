"""The InferenceDeployment planner: serve the resolved ModelVersion, roll pods only when what
they read at start changes, keep the serving status and the meters' carbon current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from model_garden.api import InferenceDeployment, ModelVersion
from model_garden.api.common import ConditionStatus

from ..plan import ObjectRef, Plan, is_subset
from ..policy import check_inferencedeployment, in_force, refusals_message
from ..servingcarbon import accumulate
from ..settings import OperatorSettings
from ..status import StatusDraft
from ..storage import Mounts
from .autoscaling import ANNOTATION_REPLICAS, ConditionDraft, Scaling, plan_scaling
from .children import plan_leftovers, plan_route, plan_scalers
from .common import adapters_condition, not_ready, read_write_once_claims
from .discovery import Platform
from .objects import (
    build_config_map,
    build_deployment,
    build_policy,
    build_service,
    build_serving_config,
    by_name,
    endpoint,
    labels,
    selector,
    served_version,
)
from .plan_traffic import plan_traffic
from .scaling_status import scaling_status, wanted_replicas
from .state import InferenceDeploymentWorld
from .traffic import deployment_ready

__all__ = ["InferenceDeploymentWorld", "plan_inferencedeployment", "resolve_model_version"]


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


def plan_inferencedeployment(
    body: dict[str, Any],
    world: InferenceDeploymentWorld,
    settings: OperatorSettings,
    now: datetime,
) -> Plan:
    """Serve the resolved ModelVersion; roll pods only when what they read at start changes.

    The steps, in order: the admin policy (a refused spec changes nothing that runs), the
    NetworkPolicy (before any pod exists), the version to serve, the children, the status read
    from the Deployment, and last the meters' carbon, which every path records.
    """
    idep = InferenceDeployment.model_validate(body)
    plan = Plan()
    st = StatusDraft(idep, now)
    st.fields["selector"] = selector(idep.metadata.name)
    if _policy_allows(plan, st, idep, world, settings):
        _plan_network_policy(plan, body, idep, world, settings)
        if idep.spec.traffic:
            plan_traffic(plan, st, body, idep, world, settings)
        else:
            mv = _version_to_serve(plan, st, idep, world)
            if mv is not None:
                _plan_serving(plan, st, body, idep, mv, world, settings)
    _record_carbon(st, world, idep)
    if "carbon" in st.fields:
        st.fields["recommendations"] = recommendations(idep, st.fields["carbon"])
    plan.status = st.patch()
    return plan


def _policy_allows(
    plan: Plan,
    st: StatusDraft,
    idep: InferenceDeployment,
    world: InferenceDeploymentWorld,
    settings: OperatorSettings,
) -> bool:
    """Check the spec against the admin policy; a refusal is a condition and an event, and what
    runs keeps running (nothing is created or changed for a refused spec)."""
    refusals = check_inferencedeployment(idep.spec, in_force(world.policy, settings))
    if not refusals:
        return True
    message = f"Refused by the admin policy: {refusals_message(refusals)}"
    if st.set_condition("Ready", ConditionStatus.FALSE, "PolicyRefused", message):
        plan.event("Warning", "PolicyRefused", message)
    st.set_condition("Progressing", ConditionStatus.FALSE, "PolicyRefused", message)
    return False


def _version_to_serve(
    plan: Plan, st: StatusDraft, idep: InferenceDeployment, world: InferenceDeploymentWorld
) -> ModelVersion | None:
    """The resolved ModelVersion once it (and an adapter's base) is Ready; None: nothing to
    change now (not found, or waiting, in which case what runs keeps serving)."""
    mv = resolve_model_version(idep, world.model_versions)
    if mv is None:
        ns = idep.metadata.namespace or "default"
        wanted = idep.spec.model_version or f"model {idep.spec.model} at stage {idep.spec.stage}"
        message = f"No ModelVersion to serve: {wanted} was not found in namespace {ns}."
        if st.set_condition("Ready", ConditionStatus.FALSE, "ModelVersionNotFound", message):
            plan.event("Warning", "ModelVersionNotFound", message)
        st.set_condition("Progressing", ConditionStatus.FALSE, "ModelVersionNotFound", message)
        return None
    waits_for = not_ready(mv, world.model_versions)
    if waits_for is None:
        return mv
    message = f"Waiting for ModelVersion {waits_for} to become Ready (artifact verification)."
    st.set_condition("Progressing", ConditionStatus.TRUE, "WaitingForModelVersion", message)
    if world.deployment is None:
        st.set_condition("Ready", ConditionStatus.FALSE, "WaitingForModelVersion", message)
    return None


def _plan_serving(
    plan: Plan,
    st: StatusDraft,
    body: dict[str, Any],
    idep: InferenceDeployment,
    mv: ModelVersion,
    world: InferenceDeploymentWorld,
    settings: OperatorSettings,
) -> None:
    """Serve ``mv``: its config and mounts, the replicas the claims allow, the children that
    differ from what runs, the adapters' condition and the status read from the Deployment."""
    mounts = Mounts()
    config, missing, waiting = build_serving_config(
        idep, mv, world.model_versions, settings, mounts
    )
    rwo = read_write_once_claims(mounts, world.claims)
    name = idep.metadata.name
    autoscaling = idep.spec.autoscaling
    wanted = autoscaling.max_replicas if autoscaling else idep.spec.replicas
    _replicas(plan, st, wanted, rwo)
    deployment = world.deployment_named(name)
    annotations = ((deployment or {}).get("metadata") or {}).get("annotations") or {}
    patched = autoscaling is not None or annotations.get(ANNOTATION_REPLICAS) == "patch"
    if rwo and wanted > 1:
        scaling = Scaling(autoscaler="fixed", replicas=1)
        if autoscaling is not None:
            scaling.autoscaler = "none"
            scaling.condition = ConditionDraft(
                ConditionStatus.FALSE,
                "ReadWriteOnceClaim",
                "Not autoscaling: a ReadWriteOnce claim limits the replicas to 1.",
            )
    else:
        scaling = plan_scaling(
            body,
            idep,
            labels(body),
            name,
            name,
            config.ports.api,
            config.model.name,
            world.platform or Platform(),
            settings,
            patched,
        )
    desired = _Children(
        config_map=build_config_map(body, config),
        deployment=build_deployment(
            body, idep, config, mounts, scaling.replicas, bool(rwo), settings
        ),
        service=build_service(body, config),
    )
    if patched:
        meta = desired.deployment["metadata"]
        meta["annotations"] = {**meta.get("annotations", {}), ANNOTATION_REPLICAS: "patch"}
    replicas = wanted_replicas(scaling, deployment)
    rolling = _plan_children(plan, idep, world, desired, mv.metadata.name, replicas)
    observed = ((deployment or {}).get("spec") or {}).get("replicas")
    if scaling.patch_replicas is not None and observed != scaling.patch_replicas:
        ns = idep.metadata.namespace or "default"
        target = ObjectRef("apps/v1", "Deployment", ns, name)
        plan.patch.append((target, {"spec": {"replicas": scaling.patch_replicas}}))
    plan_scalers(plan, body, world, scaling.objects)
    plan_route(plan, body, world, None)
    if not rolling and deployment_ready(deployment):
        plan_leftovers(plan, body, world, keep={name}, services=set())
    adapters_condition(plan, st, idep, missing, waiting)
    ns = idep.metadata.namespace or "default"
    st.fields["endpoint"] = endpoint(name, ns, config.ports.api)
    st.fields["modelVersion"] = mv.metadata.name
    st.fields["servedModels"] = [config.model.name, *(a.name for a in config.adapters)]
    if st.current.get("traffic"):
        st.fields["traffic"] = []
        st.fields["trafficMode"] = None
    scaling_status(plan, st, scaling, world, deployment, name)
    _status_from_deployment(plan, st, deployment, mv.metadata.name, replicas, rolling)


def _replicas(plan: Plan, st: StatusDraft, wanted: int, rwo: list[str]) -> int:
    """The replicas to run: one when a claim is ReadWriteOnce (only one pod can mount it),
    said in ``ReplicasLimited``; the condition turns False once the limit is gone."""
    if rwo and wanted > 1:
        message = (
            f"Serving 1 of {wanted} replicas: claim(s) {', '.join(rwo)} are ReadWriteOnce, so"
            " only one pod can mount them. Copy the artifact to a ReadWriteMany or ReadOnlyMany"
            " claim to scale out."
        )
        if st.set_condition("ReplicasLimited", ConditionStatus.TRUE, "ReadWriteOnceClaim", message):
            plan.event("Warning", "ReplicasLimited", message)
        return 1
    if st.condition("ReplicasLimited") is not None:
        st.set_condition(
            "ReplicasLimited",
            ConditionStatus.FALSE,
            "NotLimited",
            "All replicas can mount the artifact.",
        )
    return wanted


@dataclass(frozen=True)
class _Children:
    """The desired children that run the server (the NetworkPolicy is planned apart)."""

    config_map: dict[str, Any]
    deployment: dict[str, Any]
    service: dict[str, Any]


def _plan_children(
    plan: Plan,
    idep: InferenceDeployment,
    world: InferenceDeploymentWorld,
    desired: _Children,
    mv_name: str,
    replicas: int,
) -> bool:
    """Apply each child whose desired fields differ from what runs (so a replan of an applied
    plan is empty); True when the Deployment is (re)applied, i.e. its rollout is not done."""
    deployment = world.deployment
    if world.config_map is None or not is_subset(
        desired.config_map["data"], world.config_map.get("data")
    ):
        plan.apply.append(desired.config_map)
        if world.config_map is not None and deployment is not None:
            how = (
                "adapters are loaded at run time, no restart"
                if idep.spec.dynamic_adapters
                else "the pods roll when what vLLM reads at start changed"
            )
            plan.event("Normal", "ConfigUpdated", f"Serving config updated ({how}).")
    rolling = (
        deployment is None
        or not is_subset(desired.deployment["spec"], deployment.get("spec"))
        or not is_subset(
            desired.deployment["metadata"].get("annotations") or {},
            (deployment.get("metadata") or {}).get("annotations") or {},
        )
    )
    if rolling:
        plan.apply.append(desired.deployment)
        old = served_version(deployment)
        if deployment is None:
            plan.event(
                "Normal", "DeploymentCreated", f"Serving {mv_name} with {replicas} replica(s)."
            )
        elif old and old != mv_name:
            plan.event("Normal", "RollingUpdate", f"Rolling out {mv_name} (was {old}).")
    if world.service is None or not is_subset(desired.service["spec"], world.service.get("spec")):
        plan.apply.append(desired.service)
    return rolling


def _status_from_deployment(
    plan: Plan,
    st: StatusDraft,
    deployment: dict[str, Any] | None,
    mv_name: str,
    replicas: int,
    rolling: bool,
) -> None:
    """Replica counts, ``Progressing`` and ``Ready`` as the Deployment reports them: rolled out
    only when the controller saw the latest spec and every wanted pod is updated and ready."""
    dstatus = (deployment or {}).get("status") or {}
    ready = int(dstatus.get("readyReplicas") or 0)
    updated = int(dstatus.get("updatedReplicas") or 0)
    st.fields["replicas"] = int(dstatus.get("replicas") or 0)
    st.fields["readyReplicas"] = ready
    rolled = (
        deployment is not None
        and not rolling
        and int(dstatus.get("observedGeneration") or 0)
        >= int((deployment.get("metadata") or {}).get("generation") or 0)
        and updated >= replicas
        and ready >= replicas
    )
    if rolled:
        st.set_condition(
            "Progressing", ConditionStatus.FALSE, "RolloutComplete", f"{mv_name} is rolled out."
        )
    else:
        st.set_condition(
            "Progressing",
            ConditionStatus.TRUE,
            "RollingOut",
            f"Rolling out {mv_name}: {updated} of {replicas} pod(s) updated, {ready} ready.",
        )
    url = st.fields["endpoint"]
    if replicas == 0:
        st.set_condition(
            "Ready", ConditionStatus.FALSE, "ScaledToZero", "Scaled to zero (0 replicas wanted)."
        )
    elif ready >= 1:
        message = f"Serving {mv_name} at {url} ({ready}/{replicas} ready)."
        if st.set_condition("Ready", ConditionStatus.TRUE, "Serving", message):
            plan.event("Normal", "Ready", f"Serving {mv_name} at {url}.")
    else:
        st.set_condition(
            "Ready",
            ConditionStatus.FALSE,
            "Starting",
            f"No server pod is ready yet (0/{replicas}); vLLM loads the model first.",
        )


def _record_carbon(
    st: StatusDraft, world: InferenceDeploymentWorld, idep: InferenceDeployment
) -> None:
    """Add this poll's meter readings to ``status.carbon`` (no poll: it stays as is). The
    readings are attributed to the version served when they were taken (the current status)."""
    if world.readings is not None:
        st.fields["carbon"] = accumulate(
            st.current.get("carbon"),
            world.readings,
            st.current.get("modelVersion"),
            world.live_pods,
            adapters={a.name: a.model_version for a in idep.spec.adapters},
        )


def recommendations(idep: InferenceDeployment, carbon: dict[str, Any]) -> list[dict[str, Any]]:
    """The carbon rules on the deployment's serving figures as of this poll (idle energy,
    tokens per joule; GPU right-sizing stays silent without a utilisation figure)."""
    from model_garden.api.inferencedeployment import ServingCarbonStatus
    from model_garden.carbon.recommend.engine import evaluate, status_briefs
    from model_garden.carbon.recommend.facts import deployment_facts

    now = idep.model_copy(deep=True)
    now.status.carbon = ServingCarbonStatus.model_validate(carbon)
    facts = deployment_facts(now)
    return status_briefs(evaluate([], [facts])) if facts is not None else []


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
