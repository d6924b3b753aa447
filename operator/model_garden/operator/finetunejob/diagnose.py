"""Why a FineTuneJob's Job or pod is where it is, in sentences a user can act on.

Pure readers of the Job and its pods (built-in kinds, so plain dicts). ``diagnose_pending`` looks
at a Job that has not started training: a pod that cannot be scheduled, pull its image, get its
configuration (a Secret or key that does not exist), mount its volumes, or a Job that creates no
pod at all. Each is reported at once (when its message names the cause) and becomes terminal
once it has lasted ``settings.stuck_timeout_seconds``, so nothing stays ``Starting`` forever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from model_garden.api import FineTuneJob
from model_garden.api.contracts import TrainingResult

from .. import observe

PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")
CONFIG_REASONS = ("CreateContainerConfigError", "CreateContainerError")
_SECRET = re.compile(r'secret "([^"]+)" not found', re.IGNORECASE)
_SECRET_KEY = re.compile(r"couldn't find key (\S+) in Secret (\S+)", re.IGNORECASE)
_CONFIG_MAP = re.compile(r'configmap "([^"]+)" not found', re.IGNORECASE)


@dataclass(frozen=True)
class Diagnosis:
    """Why a job is where it is: a CamelCase reason and a sentence a user can act on."""

    reason: str
    message: str
    terminal: bool = False


def diagnose_failure(
    ftj: FineTuneJob, job: dict[str, Any], pods: list[dict[str, Any]]
) -> tuple[Diagnosis, TrainingResult | None]:
    """Why a failed Job failed, from its condition, the pods' exit states and the trainer's result."""
    cond = observe.condition(job, "Failed") or {}
    if cond.get("reason") == "DeadlineExceeded":
        return Diagnosis(
            "DeadlineExceeded",
            f"The job ran longer than spec.activeDeadlineSeconds ({ftj.spec.active_deadline_seconds}s)"
            " and was stopped; raise the deadline or lower hyperparameters.maxSteps/epochs."
            " Checkpoints are kept, so a new job resumes from the last one.",
            True,
        ), None
    for pod in observe.newest_first(pods):
        term = observe.terminated(pod, observe.TRAINER_CONTAINER)
        if not term:
            continue
        result = observe.parse_result(term.get("message"))
        if term.get("reason") == "OOMKilled":
            memory = ftj.spec.resources.memory or "the default"
            return Diagnosis(
                "OOMKilled",
                f"The trainer ran out of memory (limit {memory}) and was killed; raise"
                " spec.resources.memory, or lower hyperparameters.batchSize or"
                " dataset.maxSeqLength, or use method qlora.",
                True,
            ), result
        if result is not None and result.outcome == "Failed":
            reason = result.reason or "TrainingFailed"
            return Diagnosis(
                reason, result.message or f"The trainer failed ({reason}).", True
            ), result
        code = term.get("exitCode")
        tail = (term.get("message") or "").strip()[-300:]
        return Diagnosis(
            "TrainerError",
            f"The trainer exited with code {code} after {ftj.spec.backoff_limit + 1} attempt(s)"
            + (f": {tail}" if tail else "; see the pod's logs."),
            True,
        ), result
    message = cond.get("message") or "The Job failed."
    return Diagnosis(str(cond.get("reason") or "JobFailed"), message, True), None


def unretryable_attempt(
    pods: list[dict[str, Any]], codes: tuple[int, ...]
) -> dict[str, Any] | None:
    """The newest pod whose trainer exited with one of ``codes`` (a bad config or bad input).

    The Job's ``podFailurePolicy`` fails the Job on these at once, but only from Kubernetes
    1.26 on (earlier API servers drop the field): there the Job would retry the same bad
    input ``backoffLimit`` times, which the planner stops instead (seen on the 1.20 node).
    """
    for pod in observe.newest_first(pods):
        term = observe.terminated(pod, observe.TRAINER_CONTAINER)
        if term and term.get("exitCode") in codes:
            return pod
    return None


def find_result(pods: list[dict[str, Any]]) -> TrainingResult | None:
    """The TrainingResult of the newest pod whose trainer exited 0 with a result."""
    for pod in observe.newest_first(pods):
        term = observe.terminated(pod, observe.TRAINER_CONTAINER)
        if term and term.get("exitCode") == 0:
            result = observe.parse_result(term.get("message"))
            if result is not None:
                return result
    return None


def _age(value: Any, now: datetime) -> float | None:
    at = observe.parse_time(value)
    return None if at is None else (now - at).total_seconds()


def _config_error(ftj: FineTuneJob, text: str, stuck: bool) -> Diagnosis:
    hub = ftj.spec.base_model.hub
    token = hub.token_secret if hub is not None else None
    if match := _SECRET_KEY.search(text):
        key, secret = match.group(1), match.group(2).rsplit("/", 1)[-1]
        detail = f"Secret {secret} has no key {key}"
    elif match := _SECRET.search(text):
        detail = f"Secret {match.group(1)} does not exist in this namespace"
    elif match := _CONFIG_MAP.search(text):
        detail = f"ConfigMap {match.group(1)} does not exist in this namespace"
    else:
        detail = text or "its container configuration is invalid"
    hint = (
        f" Check spec.baseModel.hub.tokenSecret (name {token.name}, key {token.key})"
        " or create the Secret."
        if token is not None and "ecret" in detail
        else ""
    )
    return Diagnosis("ContainerConfigError", f"The trainer cannot start: {detail}.{hint}", stuck)


def _volumes(pod: dict[str, Any]) -> str:
    """The ConfigMaps and claims a pod mounts, named for a FailedMount message."""
    names = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if "configMap" in volume:
            names.append(f"ConfigMap {volume['configMap'].get('name')}")
        elif "persistentVolumeClaim" in volume:
            names.append(
                f"PersistentVolumeClaim {volume['persistentVolumeClaim'].get('claimName')}"
            )
    return ", ".join(names) or "its volumes"


def diagnose_pending(
    ftj: FineTuneJob,
    job: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    now: datetime,
    stuck_after: float,
) -> Diagnosis | None:
    """Why a started Job has no running trainer; terminal once that lasted ``stuck_after`` s."""
    if not pods:
        return _no_pod(job, now, stuck_after)
    pod = observe.newest_first(pods)[0]
    age = _age((pod.get("metadata") or {}).get("creationTimestamp"), now)
    stuck = age is not None and age > stuck_after
    waiting = observe.waiting(pod, observe.TRAINER_CONTAINER) or {}
    reason = str(waiting.get("reason") or "")
    text = str(waiting.get("message") or "")
    if reason in PULL_REASONS:
        image = ftj.spec.image or "the trainer image"
        return Diagnosis(
            "ImagePullFailed",
            f"Cannot pull {image}: {text or reason}. Check spec.image, the registry's"
            " reachability and imagePullSecrets.",
            stuck or reason == "InvalidImageName",
        )
    if reason in CONFIG_REASONS:
        return _config_error(ftj, text, stuck)
    scheduled = observe.condition(pod, "PodScheduled") or {}
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        res = ftj.spec.resources
        asked = f"{res.gpus} nvidia.com/gpu" if res.gpus else "the CPU and memory requested"
        selector = f" matching nodeSelector {res.node_selector}" if res.node_selector else ""
        return Diagnosis(
            "Unschedulable",
            f"No node{selector} can run the trainer with {asked}:"
            f" {scheduled.get('message') or 'no fitting node'}. Lower spec.resources, fix"
            " spec.resources.nodeSelector/tolerations, or add capacity.",
            stuck,
        )
    creating = reason == "ContainerCreating" or (
        scheduled.get("status") == "True" and (pod.get("status") or {}).get("phase") == "Pending"
    )
    if creating and stuck:
        name = (pod.get("metadata") or {}).get("name", "")
        return Diagnosis(
            "ContainerCreationStuck",
            f"The trainer pod {name} was scheduled but its container has not been created for"
            f" over {stuck_after:.0f}s; most often a volume cannot be mounted (FailedMount):"
            f" check that {_volumes(pod)} exist (kubectl describe pod {name} shows why).",
            True,
        )
    return None


def _no_pod(job: dict[str, Any] | None, now: datetime, stuck_after: float) -> Diagnosis | None:
    """A Job that created no pod for ``stuck_after`` s: the Job controller's FailedCreate."""
    if job is None or (job.get("spec") or {}).get("suspend"):
        return None
    status = job.get("status") or {}
    if status.get("active") or status.get("succeeded") or status.get("failed"):
        return None
    started = status.get("startTime") or (job.get("metadata") or {}).get("creationTimestamp")
    age = _age(started, now)
    if age is None or age <= stuck_after:
        return None
    name = (job.get("metadata") or {}).get("name", "")
    return Diagnosis(
        "PodCreationFailed",
        f"Job {name} has created no pod in {age:.0f}s: the Job controller cannot create it"
        " (a ResourceQuota, LimitRange, admission policy or missing service account;"
        f" kubectl describe job {name} shows the FailedCreate events).",
        True,
    )
