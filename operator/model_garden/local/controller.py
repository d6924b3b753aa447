"""Local mode's reconciler: the operator's planners over the store, with the local executor.

:meth:`LocalController.reconcile` is one pass of what the operator does on its timers: the
store's Jobs and Pods are brought up to date (:mod:`.jobs`: kubelet and Job controller), then
every FineTuneJob and ModelVersion is planned by the operator's own planners
(``plan_finetunejob``, ``plan_modelversion``, the admission, ``plan_invalid``) from the same
world the operator's indexes would show, and the plan is executed on the store. Nothing is
decided here: only what is observed and where the plan goes differ from a cluster.
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.common import ConditionStatus, utcnow
from model_garden.api.contracts import ServingCarbon, TrainingProgress
from model_garden.api.labels import LABEL_COMPONENT, LABEL_FTJ_UID, LABEL_IDEP_UID, LABEL_MV_UID
from model_garden.operator import observe
from model_garden.operator.finetunejob import admission
from model_garden.operator.finetunejob.plan import FineTuneJobWorld, plan_finetunejob
from model_garden.operator.gridreading import grid_now, operator_grid
from model_garden.operator.inferencedeployment.objects import endpoint
from model_garden.operator.inferencedeployment.plan import (
    InferenceDeploymentWorld,
    plan_inferencedeployment,
)
from model_garden.operator.modelversion.plan import (
    ModelVersionWorld,
    plan_modelversion,
    serving_deployments,
)
from model_garden.operator.plan import Plan
from model_garden.operator.settings import OperatorSettings
from model_garden.operator.status import StatusDraft, plan_invalid

from . import deployments, jobs
from .executor import execute
from .store import LocalStore

PROGRESS_TIMEOUT_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _labelled(objs: list[dict[str, Any]], label: str, value: str | None) -> list[dict[str, Any]]:
    return [o for o in objs if value and (o["metadata"].get("labels") or {}).get(label) == value]


def _typed(bodies: list[dict[str, Any]], model: type[Any]) -> list[Any]:
    out = []
    for body in bodies:
        with contextlib.suppress(ValidationError):
            out.append(model.model_validate(body))
    return out


def progress_port(job: dict[str, Any]) -> int | None:
    """The port the Job's trainer serves /progress on (its container's port named progress)."""
    for container in job["spec"]["template"]["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == "progress":
                return int(port["containerPort"])
    return None


def read_progress(
    job: dict[str, Any] | None, pods: list[dict[str, Any]]
) -> TrainingProgress | None:
    """The running trainer's /progress, as the operator polls it (None when it does not answer)."""
    if job is None or not any(observe.is_running(p) for p in pods):
        return None
    port = progress_port(job)
    if port is None:
        return None
    import httpx  # only while a trainer runs: it costs a fifth of a second to import

    try:
        reply = httpx.get(f"http://127.0.0.1:{port}/progress", timeout=PROGRESS_TIMEOUT_SECONDS)
        return TrainingProgress.model_validate(reply.json())
    except (httpx.HTTPError, ValueError, ValidationError):
        return None


LOCAL_SCALING_REFUSAL = (
    "spec.autoscaling and spec.traffic need a cluster (an autoscaler, per-version Deployments"
    " behind one Service); local mode runs one server: remove them to serve here."
)


def local_refusal(body: dict[str, Any], message: str) -> Plan:
    """Ready=False with reason ``NotSupportedLocally`` (an event when it newly applies)."""
    draft = StatusDraft(body, utcnow())
    plan = Plan()
    if draft.set_condition("Ready", ConditionStatus.FALSE, "NotSupportedLocally", message):
        plan.event("Warning", "NotSupportedLocally", message)
    plan.status = draft.patch()
    return plan


class LocalController:
    """The operator's reconcilers for one store."""

    def __init__(self, store: LocalStore, settings: OperatorSettings | None = None) -> None:
        self.store = store
        self.settings = settings or OperatorSettings()
        self.grid = operator_grid(self.settings)

    def reconcile(self) -> None:
        """One pass over every Job, Deployment and resource of the store."""
        with self.store.lock():
            jobs.sync(self.store)
            for body in self.store.list_raw("FineTuneJob"):
                self.reconcile_finetunejob(body)
            for body in self.store.list_raw("InferenceDeployment"):
                self.reconcile_inferencedeployment(body)
            jobs.sync(self.store)  # start the pods of Jobs and Deployments just made
            for body in self.store.list_raw("ModelVersion"):
                self.reconcile_modelversion(body)
            jobs.sync(self.store)

    def reconcile_finetunejob(self, body: dict[str, Any]) -> None:
        store = self.store
        try:
            ftj = FineTuneJob.model_validate(body)
        except ValidationError as exc:
            execute(store, plan_invalid("FineTuneJob", body, exc), body)
            return
        uid = ftj.metadata.uid
        trainer_jobs = _labelled(store.list_raw("Job"), LABEL_COMPONENT, "trainer")
        world = FineTuneJobWorld(
            job=next((j for j in trainer_jobs if admission.job_owner_uid(j) == uid), None),
            pods=_labelled(store.list_raw("Pod"), LABEL_FTJ_UID, uid),
            model_versions=_typed(store.list_raw("ModelVersion"), ModelVersion),
        )
        settings = self.settings
        if world.job is None and not admission.is_done(ftj):
            siblings = _typed(store.list_raw("FineTuneJob"), FineTuneJob)
            decision = admission.decide(ftj, siblings, trainer_jobs, {})
            world.job = decision.job
            world.reserved_versions = set(decision.reserved_versions)
            world.running_in_namespace = decision.running
            world.older_waiting = decision.older_waiting
            world.namespace_spent_kg = decision.namespace_spent_kg
            world.experiment_spent_kg = decision.experiment_spent_kg
            # Pods share this machine's network: each trainer gets a port of its own.
            settings = settings.model_copy(update={"progress_port": free_port()})
        source = ftj.spec.base_model.model_version
        if source is not None:
            world.base_model_version = next(
                (m for m in world.model_versions if m.metadata.name == source.name), None
            )
        world.progress = read_progress(world.job, world.pods)
        if ftj.spec.carbon.scheduled and not admission.is_done(ftj):
            world.grid = grid_now(self.grid, ftj, settings)
        plan = plan_finetunejob(body, world, settings, utcnow())
        execute(store, plan, body)

    def reconcile_modelversion(self, body: dict[str, Any]) -> None:
        store = self.store
        name = body["metadata"]["name"]
        try:
            mv = ModelVersion.model_validate(body)
        except ValidationError as exc:
            execute(store, plan_invalid("ModelVersion", body, exc), body)
            return
        uid = mv.metadata.uid
        ideps = store.list_raw("InferenceDeployment")
        world = ModelVersionWorld(
            verify_job=next(iter(_labelled(store.list_raw("Job"), LABEL_MV_UID, uid)), None),
            verify_pods=_labelled(store.list_raw("Pod"), LABEL_MV_UID, uid),
            serving_deployments=serving_deployments(
                name,
                _typed(ideps, InferenceDeployment),
                _typed(store.list_raw("ModelVersion"), ModelVersion),
            ),
            deployments=ideps,
        )
        plan = plan_modelversion(body, world, self.settings, utcnow())
        execute(store, plan, body)
        after = store.get("ModelVersion", name)
        if after and after["metadata"].get("deletionTimestamp"):
            if not after["metadata"].get("finalizers"):
                store.delete("ModelVersion", name)  # the API server's part once finalizers clear

    def reconcile_inferencedeployment(self, body: dict[str, Any]) -> None:
        """The operator's InferenceDeployment planner. The server listens on ports of this
        machine, so each deployment gets its own (kept while its Deployment exists), and the
        endpoint is that port on 127.0.0.1 instead of the Service's cluster DNS name."""
        store = self.store
        try:
            idep = InferenceDeployment.model_validate(body)
        except ValidationError as exc:
            execute(store, plan_invalid("InferenceDeployment", body, exc), body)
            return
        if idep.spec.autoscaling is not None or idep.spec.traffic:
            execute(store, local_refusal(body, LOCAL_SCALING_REFUSAL), body)
            return
        uid = idep.metadata.uid

        def child(kind: str) -> dict[str, Any] | None:
            return next(iter(_labelled(store.list_raw(kind), LABEL_IDEP_UID, uid)), None)

        deployment = child("Deployment")
        pods = _labelled(store.list_raw("Pod"), LABEL_IDEP_UID, uid)
        world = InferenceDeploymentWorld(
            model_versions=_typed(store.list_raw("ModelVersion"), ModelVersion),
            deployment=deployment,
            service=child("Service"),
            config_map=child("ConfigMap"),
            network_policy=child("NetworkPolicy"),
            readings=self._meter_readings(pods),
            live_pods=[p["metadata"]["uid"] for p in pods],
        )
        api, meter = self._serving_ports(deployment)
        settings = self.settings.model_copy(update={"api_port": api, "meter_port": meter})
        plan = plan_inferencedeployment(body, world, settings, utcnow())
        ns = idep.metadata.namespace or "default"
        service_url = endpoint(idep.metadata.name, ns, api)
        local_url = f"http://127.0.0.1:{api}/v1"
        if plan.status:
            plan.status = json.loads(json.dumps(plan.status).replace(service_url, local_url))
        plan.events = [
            replace(e, message=e.message.replace(service_url, local_url)) for e in plan.events
        ]
        execute(store, plan, body)

    @staticmethod
    def _serving_ports(deployment: dict[str, Any] | None) -> tuple[int, int]:
        if deployment is not None:
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            api = deployments.container_port(container, "http")
            meter = deployments.container_port(container, "metrics")
            if api and meter:
                return api, meter
        return free_port(), free_port()

    def _meter_readings(self, pods: list[dict[str, Any]]) -> dict[str, ServingCarbon] | None:
        """Each running server's meter, as the operator polls it (None: no pod answered)."""
        import httpx

        readings = {}
        for pod in pods:
            if not observe.is_running(pod):
                continue
            port = deployments.container_port(pod["spec"]["containers"][0], "metrics")
            try:
                reply = httpx.get(
                    f"http://127.0.0.1:{port}{self.settings.meter_path}",
                    timeout=PROGRESS_TIMEOUT_SECONDS,
                )
                readings[pod["metadata"]["uid"]] = ServingCarbon.model_validate(reply.json())
            except (httpx.HTTPError, ValueError, ValidationError):
                continue
        return readings or None
