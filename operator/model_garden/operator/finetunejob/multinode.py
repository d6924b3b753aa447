"""More than one training process: the trainer's command, and the workload a FineTuneJob becomes.

One node (``spec.nodes: 1``): a batch/v1 Job, as always; with ``resources.gpus`` above 1 its
container runs one trainer process per GPU under torchrun (``model_garden.training.launch``:
torch's own launcher, keeping the trainer's exit codes for the podFailurePolicy).

Several nodes: the operator does not launch pods across nodes itself (no home-made launcher).
It renders, by what the API server serves (:func:`engines`, from discovery):

1. a Kubeflow Trainer v2 ``TrainJob`` (trainer.kubeflow.org/v1alpha1) on the
   ``torch-distributed`` ClusterTrainingRuntime: Trainer creates the pods and sets torchrun's
   ``PET_*`` environment (nodes, processes per node, node rank, master address);
2. else a ``JobSet`` (jobset.x-k8s.io/v1alpha2): one Job per node, headless-Service DNS, and the
   ``PET_*`` environment set here (node rank from the job-index annotation, master = node 0);
3. else nothing, and the job is refused with reason :data:`UNAVAILABLE` naming what to install.

Both carry the very pod the one-node Job has (mounts, security context, scheduling, config), so
a multi-node run differs only in who starts its pods; the planner follows either to its result
as it follows a Job (workload.py). Pure functions but :func:`discover` and its
:class:`EngineCache`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from model_garden.api import FineTuneJob
from model_garden.api.common import ConditionStatus
from model_garden.api.finetunejob import Backend

from .. import discovered
from ..discovered import Call, Discovered, group_versions, resource_lists
from ..plan import Plan
from ..status import StatusDraft

TRAINJOB = ("trainer.kubeflow.org", "v1alpha1", "trainjobs")
JOBSET = ("jobset.x-k8s.io", "v1alpha2", "jobsets")
UNAVAILABLE = "MultiNodeUnavailable"
"""Condition reason (``Failed`` true, ``Running`` false) of a multi-node job nothing can run."""
BACKEND_FALLBACK = "BackendFallback"
"""Event reason when more than one process makes the trainer use transformers, not Unsloth."""
TRAINER_RUNTIME = "torch-distributed"
"""Kubeflow Trainer's ClusterTrainingRuntime for PyTorch (installed with Trainer's runtimes)."""
NODE_JOB = "node"
"""The replicated job (and, in Trainer's torch runtime, the container) of the training nodes."""
MASTER_PORT = 29500
JOB_INDEX_ANNOTATION = "jobset.sigs.k8s.io/job-index"
MANAGER = "modelgarden.dev/operator"
"""The TrainJob's runtime patches are ours under this manager name."""

TRAINER = ["python", "-m", "model_garden.training"]
LAUNCHER = ["python", "-m", "model_garden.training.launch"]


@dataclass(frozen=True)
class Engines:
    """Which multi-node engines the API server serves."""

    trainjob: bool = False
    jobset: bool = False


def engines(groups: Mapping[str, Any], resources: Mapping[tuple[str, str], set[str]]) -> Engines:
    """The :class:`Engines` from ``/apis`` (an APIGroupList) and the listed group-versions'
    resource names: a group alone is not enough, its kind's resource must be served."""

    def serves(group: str, version: str, resource: str) -> bool:
        return discovered.serves(groups, resources, group, version, resource)

    return Engines(trainjob=serves(*TRAINJOB), jobset=serves(*JOBSET))


def discover(call: Call) -> Engines:
    """Ask the API server: one GET of ``/apis``, one per engine group-version it lists."""
    groups = call("GET", "/apis")
    listed = [(g, v) for g, v, _ in (TRAINJOB, JOBSET) if v in group_versions(groups, g)]
    return engines(groups, resource_lists(call, listed))


class EngineCache(Discovered[Engines]):
    """The engines as last discovered (:class:`Discovered`): installing Trainer or JobSet later
    is seen without one discovery round per reconcile."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(discover, "engine discovery", clock)


# --- the trainer's command ------------------------------------------------------------------------


def processes_per_node(gpus: int) -> int:
    """One training process per GPU; one on a node without GPUs."""
    return max(1, gpus)


def trainer_command(gpus: int, nodes: int) -> list[str]:
    """The trainer container's command (its args are ``--config FILE``).

    One process: the trainer itself. Several on one node: torchrun's standalone rendezvous.
    Several nodes: the launcher reads nodes, processes per node, node rank and the master from
    ``PET_*`` variables (Trainer sets them; the JobSet's pod template does here)."""
    if nodes == 1 and gpus <= 1:
        return list(TRAINER)
    if nodes == 1:
        return [*LAUNCHER, "--standalone", f"--nproc-per-node={gpus}", *TRAINER[1:]]
    return [*LAUNCHER, *TRAINER[1:]]


def backend_fallback(ftj: FineTuneJob) -> str | None:
    """Why the trainer will not use Unsloth though the spec may (``unsloth``, or ``auto`` on
    GPUs): more than one training process. None when nothing changes."""
    spec = ftj.spec
    total = processes_per_node(spec.resources.gpus) * spec.nodes
    if total <= 1:
        return None
    if spec.backend == Backend.UNSLOTH or (spec.backend == Backend.AUTO and spec.resources.gpus):
        return (
            f"{total} training processes ({spec.nodes} node(s) x "
            f"{processes_per_node(spec.resources.gpus)}): Unsloth runs on several GPUs only"
            " through Accelerate/DeepSpeed and the HF Trainer, not the trainer's own"
            " data-parallel loop, so the transformers backend (PEFT) trains instead"
        )
    return None


# --- the planner's choice ------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """What a FineTuneJob becomes: the kind to create, or why none (``refused``)."""

    kind: str | None
    """``Job``, ``TrainJob``, ``JobSet``, or None when refused."""
    refused: str | None = None
    """The condition message when no engine can run the job (reason :data:`UNAVAILABLE`)."""


def choose(nodes: int, found: Engines) -> Workload:
    """One node: a Job. More: TrainJob where served, else JobSet, else refused."""
    if nodes == 1:
        return Workload("Job")
    if found.trainjob:
        return Workload("TrainJob")
    if found.jobset:
        return Workload("JobSet")
    return Workload(
        None,
        refused=(
            f"spec.nodes is {nodes}: training on more than one node needs Kubeflow Trainer v2"
            f" ({TRAINJOB[0]}/{TRAINJOB[1]} TrainJob, with its {TRAINER_RUNTIME}"
            f" ClusterTrainingRuntime) or JobSet ({JOBSET[0]}/{JOBSET[1]}) installed; this"
            " cluster serves neither. Install one, or set spec.nodes to 1."
        ),
    )


def refuse(plan: Plan, st: StatusDraft, workload: Workload) -> None:
    """The planner's refusal of a multi-node job nothing can run: ``Failed`` (a Warning event
    when it newly applies), ``Running`` and ``Succeeded`` false, all with reason
    :data:`UNAVAILABLE` and the message naming what to install; nothing is created."""
    message = workload.refused or UNAVAILABLE
    st.set_condition("Running", ConditionStatus.FALSE, UNAVAILABLE, message)
    st.set_condition("Succeeded", ConditionStatus.FALSE, UNAVAILABLE, message)
    if st.set_condition("Failed", ConditionStatus.TRUE, UNAVAILABLE, message):
        plan.event("Warning", UNAVAILABLE, message)
    st.stamp("completionTime")


def announce(plan: Plan, ftj: FineTuneJob, workload: dict[str, Any]) -> None:
    """The ``BackendFallback`` event, once with the workload's creation, when more than one
    training process makes the trainer use transformers instead of Unsloth."""
    note = backend_fallback(ftj)
    if note:
        plan.event("Normal", BACKEND_FALLBACK, note, if_created=workload["metadata"]["name"])


def render(job: dict[str, Any], ftj: FineTuneJob, kind: str) -> dict[str, Any]:
    """The workload of ``kind`` from the one-node Job ``build_job`` rendered for ``ftj``."""
    if kind == "Job":
        return job
    if kind == "TrainJob":
        return build_trainjob(job, ftj)
    if kind == "JobSet":
        return build_jobset(job, ftj)
    raise ValueError(f"unknown workload kind {kind!r}")


def _pet_env(ftj: FineTuneJob, master: str) -> list[dict[str, Any]]:
    """torchrun's settings as the ``PET_*`` variables it reads (the names Trainer sets)."""
    rank = {"fieldRef": {"fieldPath": f"metadata.annotations['{JOB_INDEX_ANNOTATION}']"}}
    return [
        {"name": "PET_NNODES", "value": str(ftj.spec.nodes)},
        {"name": "PET_NPROC_PER_NODE", "value": str(processes_per_node(ftj.spec.resources.gpus))},
        {"name": "PET_NODE_RANK", "valueFrom": rank},
        {"name": "PET_MASTER_ADDR", "value": master},
        {"name": "PET_MASTER_PORT", "value": str(MASTER_PORT)},
    ]


def node_job_metadata(job: dict[str, Any]) -> dict[str, Any]:
    """The node Jobs' labels: the trainer pod's (owner uid, model, version; no Kueue queue
    label, since Kueue admits the TrainJob or JobSet as a whole). They make the engine's Jobs
    and pods ours to the operator's watches: their events re-reconcile the FineTuneJob, and
    the admission counts them (slots, reserved versions) like a one-node Job."""
    return {"labels": dict(job["spec"]["template"]["metadata"]["labels"])}


def build_jobset(job: dict[str, Any], ftj: FineTuneJob) -> dict[str, Any]:
    """A JobSet of ``spec.nodes`` one-pod Jobs, each the one-node Job's pod with torchrun's
    environment; node 0 (``<name>-node-0-0.<name>``, JobSet's pod DNS) is the master.

    Failures: a pod is not retried in place (backoffLimit 0 per node Job); the whole set
    restarts up to ``spec.backoffLimit`` times (``failurePolicy.maxRestarts``), since one lost
    node stops every rank anyway. The podFailurePolicy of each node Job still fails it at once
    on exit 2/3, and a node Job that fails that way fails the set (``FailJobSet`` rule)."""
    name = job["metadata"]["name"]
    template = copy.deepcopy(job["spec"]["template"])
    pod = template["spec"]
    (container,) = pod["containers"]
    container["env"] = [*container.get("env", []), *_pet_env(ftj, f"{name}-{NODE_JOB}-0-0.{name}")]
    container["ports"] = [
        *container.get("ports", []),
        {"name": "rendezvous", "containerPort": MASTER_PORT},
    ]
    node_job: dict[str, Any] = {
        "parallelism": 1,
        "completions": 1,
        "backoffLimit": 0,
        "podFailurePolicy": job["spec"]["podFailurePolicy"],
        "template": template,
    }
    if "activeDeadlineSeconds" in job["spec"]:
        node_job["activeDeadlineSeconds"] = job["spec"]["activeDeadlineSeconds"]
    return {
        "apiVersion": f"{JOBSET[0]}/{JOBSET[1]}",
        "kind": "JobSet",
        "metadata": copy.deepcopy(job["metadata"]),
        "spec": {
            "suspend": job["spec"]["suspend"],
            "network": {"enableDNSHostnames": True, "subdomain": name},
            "failurePolicy": {
                "maxRestarts": ftj.spec.backoff_limit,
                "rules": [
                    {
                        "name": "bad-input",
                        "action": "FailJobSet",
                        "onJobFailureReasons": ["PodFailurePolicy"],
                    }
                ],
            },
            "successPolicy": {"operator": "All", "targetReplicatedJobs": [NODE_JOB]},
            "replicatedJobs": [
                {
                    "name": NODE_JOB,
                    "replicas": ftj.spec.nodes,
                    "template": {"metadata": node_job_metadata(job), "spec": node_job},
                }
            ],
        },
    }


def _trainjob_mounts(pod: dict[str, Any], container: dict[str, Any]) -> list[dict[str, Any]]:
    """The node container's mounts. A runtime patch cannot add an init container (its schema
    patches only the runtime's own), so the one-node pod's folder-preparing init container
    (storage.Mounts.prepare_container: kubelet would create a missing subPath as root) cannot
    come along; instead each claim it prepared is mounted whole, writable, where it mounts it,
    and the trainer creates its folders there itself (it claims them with ``mkdir -p``). The
    config's paths are unchanged: they lie under those mount points. Read-only sub-paths of
    the same claim stay mounted on top."""
    prepared = [m for c in pod.get("initContainers", []) for m in c.get("volumeMounts", [])]
    whole = {m["name"] for m in prepared}
    kept = [
        copy.deepcopy(m)
        for m in container["volumeMounts"]
        if not (m["name"] in whole and not m.get("readOnly"))
    ]
    return [*(dict(m, readOnly=False) for m in prepared), *kept]


def build_trainjob(job: dict[str, Any], ftj: FineTuneJob) -> dict[str, Any]:
    """A TrainJob on the ``torch-distributed`` runtime: image, command, args, env and resources
    as the trainer's ``trainer`` section; the rest of the one-node pod (volumes, mounts, init
    container, security contexts, scheduling) as our runtime patch of its ``node`` job. Trainer
    sets torchrun's ``PET_*`` environment itself."""
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    node_pod: dict[str, Any] = {
        key: copy.deepcopy(pod[key])
        for key in (
            "volumes",
            "securityContext",
            "nodeSelector",
            "tolerations",
            "serviceAccountName",
            "terminationGracePeriodSeconds",
        )
        if key in pod
    }
    node_pod["containers"] = [
        {
            "name": NODE_JOB,
            "securityContext": copy.deepcopy(container["securityContext"]),
            "volumeMounts": _trainjob_mounts(pod, container),
        }
    ]
    trainer: dict[str, Any] = {
        "image": container["image"],
        "command": container["command"],
        "args": container["args"],
        "numNodes": ftj.spec.nodes,
        "numProcPerNode": processes_per_node(ftj.spec.resources.gpus),
        "resourcesPerNode": copy.deepcopy(container["resources"]),
    }
    if container.get("env"):
        trainer["env"] = copy.deepcopy(container["env"])
    spec: dict[str, Any] = {
        "runtimeRef": {
            "apiGroup": TRAINJOB[0],
            "kind": "ClusterTrainingRuntime",
            "name": TRAINER_RUNTIME,
        },
        "suspend": job["spec"]["suspend"],
        "trainer": trainer,
        "runtimePatches": [
            {
                "manager": MANAGER,
                "trainingRuntimeSpec": {
                    "template": {
                        "spec": {
                            "replicatedJobs": [
                                {
                                    "name": NODE_JOB,
                                    "template": {
                                        "metadata": node_job_metadata(job),
                                        "spec": {
                                            "template": {
                                                "metadata": copy.deepcopy(
                                                    job["spec"]["template"]["metadata"]
                                                ),
                                                "spec": node_pod,
                                            }
                                        },
                                    },
                                }
                            ]
                        }
                    }
                },
            }
        ],
    }
    if "activeDeadlineSeconds" in job["spec"]:
        spec["activeDeadlineSeconds"] = job["spec"]["activeDeadlineSeconds"]
    return {
        "apiVersion": f"{TRAINJOB[0]}/{TRAINJOB[1]}",
        "kind": "TrainJob",
        "metadata": copy.deepcopy(job["metadata"]),
        "spec": spec,
    }
