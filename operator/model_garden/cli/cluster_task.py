"""``mg export`` and ``mg eval`` against a cluster: the program runs in a Job beside the files.

The version's artifact is on a claim the CLI cannot read, so the same program the local mode
runs as a process runs in a Job (:mod:`model_garden.operator.modelversion.tasks`) mounting the
claim: the CLI makes the Job, follows it, reads the result document from its log's last line
and deletes it. Paths in the documents are the pod's; outputs are ``pvc://`` URIs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from model_garden.api.common import ApiModel

from .errors import CliError, InvalidInput
from .target import ClusterBackend

F = TypeVar("F", bound=Callable[..., Any])
KIND = "ModelVersion"
POLL_SECONDS = 2.0
UNSCHEDULABLE_GRACE_SECONDS = 60.0
"""How long a pod may stay unschedulable before the CLI gives up (a cluster autoscaler may
add a node in that time)."""
MAX_BASE_HOPS = 8


def cluster_task_options(fn: F) -> F:
    """``--image``, ``--cpu``, ``--memory``: the Job's, when the command runs in a cluster."""
    fn = click.option("--memory", help="In a cluster: the Job's memory [default: 4Gi].")(fn)
    fn = click.option("--cpu", help="In a cluster: the Job's CPU [default: 1].")(fn)
    return click.option(
        "--image",
        help="In a cluster: the Job's image [default: config image, else the operator's"
        " trainer image].",
    )(fn)


def cluster_artifact(backend: ClusterBackend, mv: dict[str, Any], mounts: Any) -> Any:
    """The version's weights as pod paths (mounted read-only); an adapter's base resolved as
    serving does: a ModelVersion's artifact, a URI, else a hub id."""
    from model_garden.api.offline import VersionArtifact
    from model_garden.operator.storage import resolve

    name = mv["metadata"]["name"]
    artifact = (mv.get("spec") or {}).get("artifact") or {}
    path = mounts.add(resolve(str(artifact.get("uri"))))
    if artifact.get("format") != "adapter":
        return VersionArtifact(model_version=name, path=path, adapter=False)
    base, hops = str(artifact.get("baseModel") or ""), 0
    while "://" not in base and (base_mv := backend.get(KIND, base)) is not None:
        hops += 1
        base_artifact = (base_mv.get("spec") or {}).get("artifact") or {}
        base = str(
            base_artifact.get("uri")
            if base_artifact.get("format") != "adapter"
            else base_artifact.get("baseModel") or ""
        )
        if hops > MAX_BASE_HOPS:
            raise CliError(f"ModelVersion {name}: its chain of adapter bases does not end")
    if "://" in base:
        base = mounts.add(resolve(base))
    return VersionArtifact(model_version=name, path=path, adapter=True, base_model=base)


def claim_uri(backend: ClusterBackend, mv: dict[str, Any], *parts: str) -> str:
    """``pvc://<the artifact's claim>/<namespace>/<parts>``: where a task writes by default."""
    uri = str(((mv.get("spec") or {}).get("artifact") or {}).get("uri") or "")
    if not uri.startswith("pvc://"):
        raise InvalidInput(f"ModelVersion {mv['metadata']['name']}: its artifact is not on a claim")
    claim = uri.removeprefix("pvc://").split("/", 1)[0]
    return "/".join([f"pvc://{claim}", backend.namespace, *parts])


def run_task(
    backend: ClusterBackend,
    mv: dict[str, Any],
    task: str,
    document: ApiModel,
    mounts: Any,
    job: dict[str, str | None],
    what: str,
    timeout: float | None,
) -> dict[str, Any]:
    """Make the task's Job (``job``: the image, cpu and memory options), wait for it, return
    the result document its program printed."""
    from pydantic import ValidationError

    from model_garden.api import ModelVersion
    from model_garden.api.common import Resources
    from model_garden.operator.modelversion.tasks import build_task_job
    from model_garden.operator.observe import job_finished
    from model_garden.operator.settings import OperatorSettings

    from . import config as cli_config
    from .output import console

    settings = OperatorSettings()
    chosen = job.get("image") or cli_config.load().get("image")
    if chosen:
        settings = settings.model_copy(update={"trainer_image": chosen})
    try:
        resources = Resources.model_validate({"cpu": job.get("cpu"), "memory": job.get("memory")})
    except ValidationError as exc:
        raise InvalidInput(f"--cpu/--memory: {exc.errors()[0]['msg']}") from exc
    typed = ModelVersion.model_validate(mv)
    made = build_task_job(mv, typed, task, document, mounts, settings, resources=resources)
    created = backend.create(made)
    name = created["metadata"]["name"]
    deadline = None if timeout is None else time.monotonic() + timeout
    current, started = created, time.monotonic()
    try:
        with console(stderr=True).status(f"{what} (Job {name})"):
            while (state := job_finished(current)) is None:
                if deadline is not None and time.monotonic() > deadline:
                    raise CliError(f"Job {name} did not finish in {timeout:.0f}s")
                time.sleep(POLL_SECONDS)
                current = (
                    backend.guarded(lambda: backend.x.get(_job_ref(backend, name)), name) or {}
                )
                if not current:
                    raise CliError(f"Job {name} was deleted before it finished")
                stuck = _unschedulable(backend, name)
                if stuck and time.monotonic() - started > UNSCHEDULABLE_GRACE_SECONDS:
                    raise CliError(f"Job {name} cannot start: {stuck} (try --cpu/--memory)")
        log = backend.pod_log(f"job-name={name}")
    finally:
        backend.delete_job(name)
    lines = [line for line in log.strip().splitlines() if line.startswith("{")]
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError) as exc:
        tail = (log.strip().splitlines() or ["no log"])[-1]
        raise CliError(f"Job {name} ({state}): {tail}") from exc
    return result


def _unschedulable(backend: ClusterBackend, job: str) -> str | None:
    """The scheduler's message while the Job's pod cannot be placed, else None."""
    selector = f"job-name={job}"
    pods = backend.guarded(
        lambda: backend.x.list_objects("v1", "Pod", backend.namespace, selector), "listing pods"
    )
    from model_garden.operator.observe import condition

    for pod in pods:
        scheduled = condition(pod, "PodScheduled") or {}
        if scheduled.get("reason") == "Unschedulable":
            return str(scheduled.get("message") or "unschedulable")
    return None


def _job_ref(backend: ClusterBackend, name: str) -> Any:
    from model_garden.operator.plan import ObjectRef

    return ObjectRef("batch/v1", "Job", backend.namespace, name)
