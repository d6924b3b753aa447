"""FineTuneJob children: the ConfigMap holding its TrainingConfig, the batch/v1 Job, and the
ModelVersion a successful run produces. Pure builders: same inputs, same objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from model_garden.api import FineTuneJob, ModelVersion, version_name
from model_garden.api.contracts import (
    HF_TOKEN_ENV,
    Identity,
    TrainingConfig,
    TrainingResult,
    TrainingRuntime,
)
from model_garden.api.labels import (
    API_VERSION,
    LABEL_EXPERIMENT,
    LABEL_FTJ,
    LABEL_FTJ_UID,
    LABEL_KUEUE_QUEUE,
    LABEL_MODEL,
    LABEL_MV,
    MANAGED_BY,
    OPERATOR_NAME,
)
from model_garden.api.modelversion import TrainedEvaluation
from model_garden.api.offline import EVAL_RESULT_FILE
from model_garden.storage.credentials import s3_env

from .. import observe
from ..plan import child_meta, child_name, owner_labels
from ..podspec import (
    CACHE_ENV,
    compute,
    container_security_context,
    pod_security_context,
    scheduling,
    scratch_volumes,
)
from ..settings import TRAINER_SIGTERM_GRACE_SECONDS, OperatorSettings
from ..storage import Location, Mounts, join_uri, resolve
from .multinode import trainer_command

CONFIG_DIR = "/etc/model-garden"
CONFIG_KEY = "training-config.json"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TRAINER_EXIT_INVALID_CONFIG = 2
"""``python -m model_garden.training`` exits 2 when its TrainingConfig cannot be read: a retry
cannot help, so the Job's podFailurePolicy fails it at once instead of using up backoffLimit."""
TRAINER_EXIT_BAD_INPUT = 3
"""The trainer exits 3 on input no retry fixes (a dataset that does not parse, an output
directory that is not this job's, a refused checkpoint: ``training.run.EXIT_BAD_INPUT``)."""


def job_name(ftj_name: str) -> str:
    return child_name(ftj_name, "train")


def config_map_name(ftj_name: str) -> str:
    return child_name(ftj_name, "train-config")


def labels(ftj: FineTuneJob) -> dict[str, str]:
    """Labels of every child: the owner's name for people, its uid for the operator's matching."""
    out = owner_labels(
        "trainer",
        (LABEL_FTJ, ftj.metadata.name),
        (LABEL_FTJ_UID, ftj.metadata.uid),
        {LABEL_MODEL: ftj.output_model},
    )
    if LABEL_EXPERIMENT in ftj.metadata.labels:
        out[LABEL_EXPERIMENT] = ftj.metadata.labels[LABEL_EXPERIMENT]
    return out


def output_uri(ftj: FineTuneJob, version: int) -> str:
    ns = ftj.metadata.namespace or "default"
    return join_uri(ftj.spec.output.storage, ns, ftj.output_model, f"v{version}")


def checkpoint_uri(ftj: FineTuneJob) -> str:
    ns = ftj.metadata.namespace or "default"
    return join_uri(ftj.spec.output.storage, ns, "jobs", ftj.metadata.name, "checkpoints")


def base_model_location(
    ftj: FineTuneJob, base_mv: ModelVersion | None
) -> tuple[Location, str | None]:
    """Where the base model is: a hub id (+ revision), a URI, or a ModelVersion's artifact."""
    source = ftj.spec.base_model
    if source.hub is not None:
        return Location(source.hub.id), source.hub.revision
    if source.uri is not None:
        return resolve(source.uri), None
    assert base_mv is not None, "planner checks the ModelVersion exists first"
    return resolve(base_mv.spec.artifact.uri), None


def build_training_config(
    ftj: FineTuneJob,
    version: int,
    settings: OperatorSettings,
    mounts: Mounts,
    base_mv: ModelVersion | None = None,
) -> TrainingConfig:
    """The TrainingConfig the trainer reads; registers the claims it needs in ``mounts``."""
    base, revision = base_model_location(ftj, base_mv)
    out_uri = output_uri(ftj, version)
    carbon = ftj.spec.carbon
    return TrainingConfig(
        job=Identity(
            name=ftj.metadata.name,
            namespace=ftj.metadata.namespace or "default",
            uid=ftj.metadata.uid,
        ),
        spec=ftj.spec,
        runtime=TrainingRuntime(
            base_model=mounts.add(base),
            base_model_revision=revision,
            dataset_path=mounts.add(resolve(ftj.spec.dataset.uri)),
            output_dir=mounts.add(resolve(out_uri), writable=True),
            checkpoint_dir=mounts.add(resolve(checkpoint_uri(ftj)), writable=True),
            artifact_uri=out_uri,
            progress_port=settings.progress_port,
            termination_message_path=TERMINATION_MESSAGE_PATH,
            country=carbon.country or settings.default_country,
            region=carbon.region or settings.default_region,
            grid_overrides=settings.grid_overrides,
            hf_token_env=HF_TOKEN_ENV,
            eval_dataset_path=_eval_dataset(ftj, mounts),
        ),
        model_version=version,
    )


def _eval_dataset(ftj: FineTuneJob, mounts: Mounts) -> str | None:
    """Where spec.evaluation.dataset is in the pod (None: the job's own eval split)."""
    evaluation = ftj.spec.evaluation
    if evaluation is None or evaluation.dataset is None:
        return None
    return mounts.add(resolve(evaluation.dataset))


def build_config_map(
    body: dict[str, Any], ftj: FineTuneJob, config: TrainingConfig
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_meta(body, config_map_name(ftj.metadata.name), labels(ftj)),
        "data": {CONFIG_KEY: config.model_dump_json(by_alias=True, exclude_none=True, indent=2)},
    }


def pod_failure_policy() -> dict[str, Any]:
    """Evictions and node drains do not use up backoffLimit; an unreadable config or bad input
    (exit 2 or 3: retrying would fail the same way) fails the Job at once.

    (Kubernetes 1.26+; older API servers drop the field and count every failure, as before.)
    """
    return {
        "rules": [
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": observe.TRAINER_CONTAINER,
                    "operator": "In",
                    "values": [TRAINER_EXIT_INVALID_CONFIG, TRAINER_EXIT_BAD_INPUT],
                },
            },
        ]
    }


def build_job(
    body: dict[str, Any],
    ftj: FineTuneJob,
    version: int,
    settings: OperatorSettings,
    mounts: Mounts,
) -> dict[str, Any]:
    """The batch/v1 Job running ``python -m model_garden.training --config <mounted file>``.

    Its pods carry the version they train (a label: the admission reads reserved versions
    from it); with ``spec.queueName`` the Job starts suspended and Kueue admits it.
    """
    spec = ftj.spec
    pod_labels = labels(ftj)
    pod_labels[LABEL_MV] = version_name(ftj.output_model, version)
    job_labels = dict(pod_labels)
    if spec.queue_name:
        job_labels[LABEL_KUEUE_QUEUE] = spec.queue_name
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "podFailurePolicy": pod_failure_policy(),
        "suspend": bool(spec.queue_name) or spec.suspend,
        "template": {
            "metadata": {"labels": pod_labels},
            "spec": trainer_pod_spec(ftj, settings, mounts),
        },
    }
    if spec.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_meta(body, job_name(ftj.metadata.name), job_labels),
        "spec": job_spec,
    }


def trainer_pod_spec(
    ftj: FineTuneJob, settings: OperatorSettings, mounts: Mounts
) -> dict[str, Any]:
    """The trainer's pod: never restarted in place (the Job retries), no API token, enough
    grace after SIGTERM for the trainer to write its checkpoint."""
    spec = ftj.spec
    scratch, scratch_mounts = scratch_volumes(
        settings.tmp_size_limit,
        settings.cache_size_limit,
        shm_size_limit=spec.resources.memory or settings.trainer_memory,
    )
    container = trainer_container(ftj, settings)
    container["volumeMounts"] += mounts.volume_mounts() + scratch_mounts
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TRAINER_SIGTERM_GRACE_SECONDS + 30,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": config_map_name(ftj.metadata.name)}}]
        + mounts.volumes()
        + scratch,
        **scheduling(spec.resources, settings.gpu_node_selector, settings.gpu_tolerations),
    }
    prepare = mounts.prepare_container(container["image"], container_security_context())
    if prepare is not None:
        pod_spec["initContainers"] = [prepare]
    if settings.trainer_service_account:
        pod_spec["serviceAccountName"] = settings.trainer_service_account
    return pod_spec


def trainer_container(ftj: FineTuneJob, settings: OperatorSettings) -> dict[str, Any]:
    """The trainer container, mounting its config directory; the caller adds the other mounts.

    Its command runs one trainer process per GPU under torchrun when ``resources.gpus`` is
    above 1 or ``spec.nodes`` is (see multinode.py). Its TrainingResult is the termination message (read by the planner), and the hub token
    comes by ``secretKeyRef`` (the operator never reads Secrets).
    """
    spec = ftj.spec
    env: list[dict[str, Any]] = list(CACHE_ENV)
    hub = spec.base_model.hub
    if hub is not None and hub.token_secret is not None:
        secret = {"name": hub.token_secret.name, "key": hub.token_secret.key}
        env.append({"name": HF_TOKEN_ENV, "valueFrom": {"secretKeyRef": secret}})
    env += s3_env(spec.storage_secret)
    return {
        "name": observe.TRAINER_CONTAINER,
        "image": spec.image or settings.trainer_image,
        "imagePullPolicy": "IfNotPresent",
        "command": trainer_command(spec.resources.gpus, spec.nodes),
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "env": env,
        "ports": [{"name": "progress", "containerPort": settings.progress_port}],
        "resources": compute(
            spec.resources,
            settings.trainer_cpu,
            settings.trainer_memory,
            settings.ephemeral_storage_request,
        ),
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }


def _decimal(value: float) -> str:
    text = format(value, ".6g")
    return text if not text.startswith("-") else "0"


def choose_artifact(ftj: FineTuneJob, result: TrainingResult) -> dict[str, Any] | None:
    """The ModelVersion artifact: merged (or full) when the job produced one, else the adapter."""
    by_kind = {str(a.kind): a for a in result.artifacts}
    chosen = by_kind.get("merged") if ftj.spec.output.merge else None
    chosen = chosen or by_kind.get("full") or by_kind.get("adapter") or by_kind.get("merged")
    if chosen is None:
        return None
    artifact: dict[str, Any] = {
        "uri": chosen.uri or chosen.path,
        "format": "adapter" if chosen.kind == "adapter" else "merged",
        "digest": chosen.digest,
        "sizeBytes": chosen.size_bytes,
    }
    if chosen.kind == "adapter":
        source = ftj.spec.base_model
        if source.hub is not None:
            artifact["baseModel"] = source.hub.id
        elif source.uri is not None:
            artifact["baseModel"] = source.uri
        elif source.model_version is not None:
            artifact["baseModel"] = source.model_version.name
    return artifact


def build_model_version(
    ftj: FineTuneJob, name: str, version: int, result: TrainingResult, artifact: dict[str, Any]
) -> dict[str, Any]:
    """The ModelVersion a successful job produces (no ownerReference: it outlives the job)."""
    mv_labels = {
        LABEL_MODEL: ftj.output_model,
        LABEL_FTJ: ftj.metadata.name,
        MANAGED_BY: OPERATOR_NAME,
    }
    if ftj.metadata.uid:
        mv_labels[LABEL_FTJ_UID] = ftj.metadata.uid
    if LABEL_EXPERIMENT in ftj.metadata.labels:
        mv_labels[LABEL_EXPERIMENT] = ftj.metadata.labels[LABEL_EXPERIMENT]
    metrics = {
        key: _decimal(value)
        for key, value in result.metrics.model_dump(by_alias=True).items()
        if isinstance(value, (int, float)) and value is not None and value >= 0
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": name, "namespace": ftj.metadata.namespace, "labels": mv_labels},
        "spec": {
            "model": ftj.output_model,
            "version": version,
            "artifact": artifact,
            "source": {"fineTuneJob": ftj.metadata.name, "fineTuneJobUid": ftj.metadata.uid},
            **({"storageSecret": ftj.spec.storage_secret} if ftj.spec.storage_secret else {}),
            "metrics": metrics,
            "trainingCarbon": {
                "energyKwh": _decimal(result.carbon.energy_kwh),
                "emissionsKg": _decimal(result.carbon.emissions_kg),
                "method": result.carbon.method,
            },
            **_evaluation(result, artifact),
            "stage": "none",
            # Explicit, as the API server's CRD default would write it: a version made in local
            # mode (no API server) then equals the cluster's.
            "retention": "Retain",
        },
    }


def _evaluation(result: TrainingResult, artifact: dict[str, Any]) -> dict[str, Any]:
    """``spec.evaluation`` of the new version from the end-of-training evaluation (when it
    scored something): the version's reconciler makes it its first ``status.evaluation``."""
    ev = result.evaluation
    if ev is None or ev.loss is None or ev.perplexity is None or ev.evaluated_at is None:
        return {}
    evaluation = TrainedEvaluation(
        dataset=ev.dataset,
        loss=_decimal(ev.loss),
        perplexity=_decimal(ev.perplexity),
        examples=ev.examples,
        tokens=ev.tokens,
        evaluated_at=datetime.fromisoformat(ev.evaluated_at),
        report=str(artifact["uri"]).rstrip("/") + "/" + EVAL_RESULT_FILE,
    )
    return {"evaluation": evaluation.to_wire()}
