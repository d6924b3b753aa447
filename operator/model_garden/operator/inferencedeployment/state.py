"""What the InferenceDeployment planner is given: the world observed for one deployment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from model_garden.api import ModelVersion
from model_garden.api.contracts import ServingCarbon

from ..policy import Policy, PolicyError
from .discovery import Platform


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
    deployments: list[dict[str, Any]] = field(default_factory=list)
    """Every Deployment of this deployment (one per version with spec.traffic; leftovers)."""
    services: list[dict[str, Any]] = field(default_factory=list)
    """Every Service of this deployment (its own, and per version behind an HTTPRoute)."""
    platform: Platform | None = None
    """What the cluster serves (None: not asked, as for a deployment without autoscaling or
    traffic: nothing there depends on it)."""
    scalers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """Autoscaler objects found, by (kind, Deployment name); kind ``keda-hpa``: KEDA's HPA."""
    route: dict[str, Any] | None = None
    """The HTTPRoute named as this deployment, if any."""
    config_maps: list[dict[str, Any]] = field(default_factory=list)
    """Every serving ConfigMap of this deployment (one per version with spec.traffic)."""

    def deployment_named(self, name: str) -> dict[str, Any] | None:
        """The observed Deployment of that name (``deployment`` is the one-Deployment case)."""
        for dep in [*self.deployments, *([self.deployment] if self.deployment else [])]:
            if dep["metadata"]["name"] == name:
                return dep
        return None

    def config_map_named(self, name: str) -> dict[str, Any] | None:
        for cm in [*self.config_maps, *([self.config_map] if self.config_map else [])]:
            if cm["metadata"]["name"] == name:
                return cm
        return None

    def service_named(self, name: str) -> dict[str, Any] | None:
        for svc in [*self.services, *([self.service] if self.service else [])]:
            if svc["metadata"]["name"] == name:
                return svc
        return None
