"""``mg export`` and ``mg eval`` against a cluster: the program runs in a Job beside the files.

The version's artifact is on a claim the CLI cannot read, so the same program the local mode
runs as a process runs in a Job (:mod:`model_garden.operator.modelversion.tasks`) mounting the
claim: the CLI makes the Job, follows it, reads the result document from its log's last line
and deletes it. Paths in the documents are the pod's; outputs are ``pvc://`` URIs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from model_garden.api.common import ApiModel

from .errors import CliError, InvalidInput
from .target import ClusterBackend

KIND = "ModelVersion"
POLL_SECONDS = 2.0
MAX_BASE_HOPS = 8


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


def _finished(job: dict[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return None


def run_task(
    backend: ClusterBackend,
    mv: dict[str, Any],
    task: str,
    document: ApiModel,
    mounts: Any,
    image: str | None,
    what: str,
    timeout: float | None,
) -> dict[str, Any]:
    """Make the task's Job, wait for it, return the result document its program printed."""
    from model_garden.api import ModelVersion
    from model_garden.operator.modelversion.tasks import build_task_job
    from model_garden.operator.settings import OperatorSettings

    from . import config as cli_config
    from .output import console

    settings = OperatorSettings()
    chosen = image or cli_config.load().get("image")
    if chosen:
        settings = settings.model_copy(update={"trainer_image": chosen})
    typed = ModelVersion.model_validate(mv)
    job = backend.create(build_task_job(mv, typed, task, document, mounts, settings))
    name = job["metadata"]["name"]
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with console(stderr=True).status(f"{what} (Job {name})"):
            while (state := _finished(job)) is None:
                if deadline is not None and time.monotonic() > deadline:
                    raise CliError(f"Job {name} did not finish in {timeout:.0f}s")
                time.sleep(POLL_SECONDS)
                job = backend.guarded(lambda: backend.x.get(_job_ref(backend, name)), name) or {}
                if not job:
                    raise CliError(f"Job {name} was deleted before it finished")
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


def _job_ref(backend: ClusterBackend, name: str) -> Any:
    from model_garden.operator.plan import ObjectRef

    return ObjectRef("batch/v1", "Job", backend.namespace, name)
