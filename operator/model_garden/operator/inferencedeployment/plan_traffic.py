"""The InferenceDeployment planner's ``spec.traffic`` path: one Deployment per version, the
split rendered as HTTPRoute weights where the Gateway API is served and a Gateway is named,
else by replicas behind the deployment's one Service (:mod:`.traffic` has the rules)."""

from __future__ import annotations

from typing import Any

from model_garden.api import InferenceDeployment, ModelVersion
from model_garden.api.common import ConditionStatus
from model_garden.api.labels import LABEL_IDEP

from ..plan import Plan, is_subset
from ..settings import OperatorSettings
from ..status import StatusDraft
from ..storage import Mounts
from .children import differs, plan_leftovers, plan_route, plan_scalers
from .common import adapters_condition, not_ready, read_write_once_claims
from .discovery import Platform
from .objects import (
    build_config_map,
    build_deployment,
    build_service,
    build_serving_config,
    by_name,
    endpoint,
    labels,
)
from .state import InferenceDeploymentWorld
from .traffic import (
    LABEL_SERVING_VERSION,
    Share,
    build_route,
    deployment_name,
    deployment_ready,
    plan_shares,
    service_selector,
)


def plan_traffic(
    plan: Plan,
    st: StatusDraft,
    body: dict[str, Any],
    idep: InferenceDeployment,
    world: InferenceDeploymentWorld,
    settings: OperatorSettings,
) -> None:
    """Serve every version of ``spec.traffic`` once all are Ready ModelVersions of one model."""
    versions = _versions(plan, st, idep, world)
    if versions is None:
        return
    name = idep.metadata.name
    ns = idep.metadata.namespace or "default"
    platform = world.platform or Platform()
    parent = _parent(idep, settings)
    route_api = platform.httproute_api_version if parent is not None else None
    entries = [(t.model_version, t.weight) for t in idep.spec.traffic or []]
    observed = {mv: world.deployment_named(deployment_name(name, mv)) for mv, _ in entries}
    shares = plan_shares(entries, idep.spec.replicas, observed)
    missing: list[str] = []
    waiting: list[str] = []
    configs = []
    changing: set[str] = set()
    for share, mv in zip(shares, versions, strict=True):
        mounts = Mounts()
        config, gone, later = build_serving_config(idep, mv, world.model_versions, settings, mounts)
        configs.append(config)
        missing += [m for m in gone if m not in missing]
        waiting += [w for w in later if w not in waiting]
        rwo = read_write_once_claims(mounts, world.claims)
        dn = deployment_name(name, share.model_version)
        config_map = build_config_map(body, config, dn)
        observed_cm = world.config_map_named(config_map["metadata"]["name"]) or {}
        if not is_subset(config_map["data"], observed_cm.get("data")):
            plan.apply.append(config_map)
        deployment = build_deployment(
            body, idep, config, mounts, share.replicas, bool(rwo), settings, share.model_version
        )
        if not is_subset(deployment["spec"], (observed[share.model_version] or {}).get("spec")):
            plan.apply.append(deployment)
            changing.add(share.model_version)
            if observed[share.model_version] is None:
                plan.event(
                    "Normal",
                    "DeploymentCreated",
                    f"Serving {share.model_version} ({share.weight}%) with"
                    f" {share.replicas} replica(s).",
                )
        if route_api is not None:
            select = {LABEL_IDEP: name, LABEL_SERVING_VERSION: share.model_version}
            _apply_service(plan, world, build_service(body, config, dn, select))
    main = configs[_stable(shares)]
    _apply_service(plan, world, build_service(body, main, select=service_selector(name, shares)))
    route = None
    if route_api is not None and parent is not None:
        route = build_route(body, labels(body), route_api, parent, shares, main.ports.api)
    plan_route(plan, body, world, route)
    plan_scalers(plan, body, world, [])
    keep = {deployment_name(name, s.model_version) for s in shares}
    live = [s for s in shares if s.weight > 0]
    if all(
        s.model_version not in changing and deployment_ready(observed[s.model_version])
        for s in live
    ):
        plan_leftovers(plan, body, world, keep, keep if route_api else set())
    adapters_condition(plan, st, idep, missing, waiting)
    st.fields["endpoint"] = endpoint(name, ns, main.ports.api)
    st.fields["modelVersion"] = shares[_stable(shares)].model_version
    st.fields["servedModels"] = [main.model.name, *(a.name for a in main.adapters)]
    st.fields["autoscaler"] = "fixed"
    _status(plan, st, shares, observed, route, parent, idep)


def _versions(
    plan: Plan, st: StatusDraft, idep: InferenceDeployment, world: InferenceDeploymentWorld
) -> list[ModelVersion] | None:
    """The ModelVersions of the split, once each exists, is Ready and all are of one model;
    else None and a condition (what runs keeps serving meanwhile)."""
    traffic = idep.spec.traffic or []
    found = [by_name(world.model_versions, t.model_version) for t in traffic]
    absent = [t.model_version for t, mv in zip(traffic, found, strict=True) if not mv]
    if absent:
        ns = idep.metadata.namespace or "default"
        message = f"ModelVersion(s) {', '.join(absent)} of spec.traffic not found in {ns}."
        if st.set_condition("Ready", ConditionStatus.FALSE, "ModelVersionNotFound", message):
            plan.event("Warning", "ModelVersionNotFound", message)
        st.set_condition("Progressing", ConditionStatus.FALSE, "ModelVersionNotFound", message)
        return None
    versions = [mv for mv in found if mv is not None]
    models = sorted({mv.spec.model for mv in versions})
    if len(models) > 1:
        message = (
            f"spec.traffic splits between versions of different models ({', '.join(models)}):"
            " a canary serves versions of one model under one name."
        )
        if st.set_condition("Ready", ConditionStatus.FALSE, "DifferentModels", message):
            plan.event("Warning", "DifferentModels", message)
        st.set_condition("Progressing", ConditionStatus.FALSE, "DifferentModels", message)
        return None
    waits = [w for mv in versions if (w := not_ready(mv, world.model_versions))]
    if waits:
        message = f"Waiting for ModelVersion(s) {', '.join(waits)} to become Ready."
        st.set_condition("Progressing", ConditionStatus.TRUE, "WaitingForModelVersion", message)
        if not world.deployments and world.deployment is None:
            st.set_condition("Ready", ConditionStatus.FALSE, "WaitingForModelVersion", message)
        return None
    return versions


def _parent(idep: InferenceDeployment, settings: OperatorSettings) -> dict[str, Any] | None:
    """The HTTPRoute's parentRef: spec.rollout.gateway, else the chart's traffic.gateway."""
    ref = idep.spec.rollout.gateway or settings.traffic_gateway
    if ref is None:
        return None
    parent: dict[str, Any] = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": ref.name,
    }
    if ref.namespace:
        parent["namespace"] = ref.namespace
    if ref.section_name:
        parent["sectionName"] = ref.section_name
    return parent


def _stable(shares: list[Share]) -> int:
    """The version with the largest share (the first on a tie): status.modelVersion."""
    return max(range(len(shares)), key=lambda i: (shares[i].weight, -i))


def _apply_service(plan: Plan, world: InferenceDeploymentWorld, svc: dict[str, Any]) -> None:
    if differs(svc, world.service_named(svc["metadata"]["name"])):
        plan.apply.append(svc)


def _status(
    plan: Plan,
    st: StatusDraft,
    shares: list[Share],
    observed: dict[str, dict[str, Any] | None],
    route: dict[str, Any] | None,
    parent: dict[str, Any] | None,
    idep: InferenceDeployment,
) -> None:
    """Replicas, the split as served, TrafficSplit, RolledBack, Progressing and Ready."""
    rows: list[dict[str, Any]] = []
    for s in shares:
        dstatus = (observed[s.model_version] or {}).get("status") or {}
        rows.append(
            {
                "modelVersion": s.model_version,
                "weight": s.weight,
                "replicas": s.replicas,
                "readyReplicas": int(dstatus.get("readyReplicas") or 0),
                "rolledBack": s.rolled_back,
            }
        )
    st.fields["traffic"] = rows
    st.fields["replicas"] = sum(
        int(((observed[s.model_version] or {}).get("status") or {}).get("replicas") or 0)
        for s in shares
    )
    st.fields["readyReplicas"] = sum(r["readyReplicas"] for r in rows)
    st.fields["desiredReplicas"] = sum(s.replicas for s in shares)
    split = ", ".join(f"{s.model_version} {s.weight}%" for s in shares)
    name = idep.metadata.name
    if route is not None and parent is not None:
        st.fields["trafficMode"] = "httproute"
        gw = f"{parent.get('namespace', idep.metadata.namespace)}/{parent['name']}"
        message = f"HTTPRoute {name} on Gateway {gw} splits requests: {split}."
        st.set_condition("TrafficSplit", ConditionStatus.TRUE, "HTTPRoute", message)
    else:
        st.fields["trafficMode"] = "replicas"
        why = (
            "no Gateway named (spec.rollout.gateway or the chart's traffic.gateway)"
            if parent is None
            else "the Gateway API's HTTPRoute is not served"
        )
        replicas = ", ".join(f"{s.model_version} {s.replicas}" for s in shares if s.weight)
        message = f"Replica-weighted behind Service {name} ({why}): {split}; replicas {replicas}."
        st.set_condition("TrafficSplit", ConditionStatus.TRUE, "ReplicaWeighted", message)
    rolled = [s for s in shares if s.rolled_back]
    if rolled:
        other = next(s for s in shares if not s.rolled_back)
        deadline = idep.spec.rollout.progress_deadline_seconds
        message = (
            f"ModelVersion {rolled[0].model_version} was not Ready within {deadline}s"
            f" (ProgressDeadlineExceeded): its traffic goes to {other.model_version}. The spec"
            " is unchanged: fix the version or remove it from spec.traffic."
        )
        if st.set_condition(
            "RolledBack", ConditionStatus.TRUE, "ProgressDeadlineExceeded", message
        ):
            plan.event("Warning", "RolledBack", message)
    elif st.condition("RolledBack") is not None:
        st.set_condition("RolledBack", ConditionStatus.FALSE, "NotRolledBack", "No roll back.")
    pending = [
        s.model_version
        for s in shares
        if not s.rolled_back and not deployment_ready(observed[s.model_version])
    ]
    if pending:
        st.set_condition(
            "Progressing",
            ConditionStatus.TRUE,
            "RollingOut",
            f"Rolling out {', '.join(pending)} ({split}).",
        )
    elif rolled:
        st.set_condition("Progressing", ConditionStatus.FALSE, "RolledBack", message)
    else:
        st.set_condition(
            "Progressing", ConditionStatus.FALSE, "RolloutComplete", f"Serving {split}."
        )
    ready = sum(r["readyReplicas"] for r in rows if r["weight"] > 0)
    url = st.fields["endpoint"]
    if not any(s.replicas for s in shares):
        st.set_condition(
            "Ready", ConditionStatus.FALSE, "ScaledToZero", "Scaled to zero (0 replicas wanted)."
        )
    elif ready >= 1:
        if st.set_condition("Ready", ConditionStatus.TRUE, "Serving", f"Serving {split} at {url}."):
            plan.event("Normal", "Ready", f"Serving {split} at {url}.")
    else:
        st.set_condition(
            "Ready",
            ConditionStatus.FALSE,
            "Starting",
            "No server pod of a version with traffic is ready yet; vLLM loads the model first.",
        )
