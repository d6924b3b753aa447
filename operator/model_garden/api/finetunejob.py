"""FineTuneJob: fine-tune a base model on a dataset; on success it produces a ModelVersion."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from .common import (
    MAX_STATUS_RECOMMENDATIONS,
    ApiModel,
    CarbonReport,
    Conditions,
    LabelNamedMeta,
    RecommendationBrief,
    Resources,
    SecretKeyRef,
)
from .display import format_emissions
from .fields import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    LABEL_MAX,
    SUBDOMAIN_MAX,
    Fraction,
    PositiveDecimal,
    StorageUri,
)
from .modelversion import MODEL_NAME_MAX

EVAL_PROMPTS_MAX = 16
EVAL_PROMPT_MAX = 2000


class HubModel(ApiModel):
    """A model on the Hugging Face Hub (or a mirror the pod can reach)."""

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$",
        description="Hub repository id, e.g. Qwen/Qwen2.5-0.5B-Instruct.",
    )
    revision: str = Field(default="main", min_length=1, description="Branch, tag or commit.")
    token_secret: SecretKeyRef | None = Field(
        default=None, description="Secret holding a Hub token (gated models); fed as HF_TOKEN."
    )


class ModelVersionRef(ApiModel):
    """A ModelVersion in the same namespace."""

    name: str = Field(
        pattern=DNS_LABEL, max_length=LABEL_MAX, description="ModelVersion name, e.g. chat-v3."
    )


class BaseModelSource(ApiModel):
    """Where the base model comes from: exactly one of hub, modelVersion, uri."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.hub), has(self.modelVersion), has(self.uri)]"
                    ".filter(x, x).size() == 1",
                    "message": "set exactly one of hub, modelVersion, uri",
                }
            ]
        }
    )

    hub: HubModel | None = Field(default=None, description="A Hugging Face Hub model.")
    model_version: ModelVersionRef | None = Field(
        default=None, description="Continue training from a ModelVersion's artifact."
    )
    uri: StorageUri | None = Field(
        default=None,
        description="pvc://<claim>/<path>, s3://<bucket>/<path> or file://<path> of a model directory.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> BaseModelSource:
        chosen = [n for n in ("hub", "model_version", "uri") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(f"set exactly one of hub, modelVersion, uri (got {len(chosen)})")
        return self


class DatasetFormat(StrEnum):
    AUTO = "auto"
    ALPACA = "alpaca"
    CHAT = "chat"
    COMPLETION = "completion"
    TEXT = "text"


class Dataset(ApiModel):
    """The training data and how to turn it into token sequences."""

    uri: StorageUri = Field(
        description="File or directory: jsonl, json, csv, parquet or a saved `datasets` folder.",
    )
    format: DatasetFormat = Field(
        default=DatasetFormat.AUTO, description="Row format; auto detects it from the fields."
    )
    chat_template: str | None = Field(
        default=None,
        description="Named template (chatml, llama3, alpaca, …); default: the model's own.",
    )
    max_seq_length: int = Field(
        default=2048, ge=16, le=1_048_576, description="Longer examples are truncated (reported)."
    )
    packing: bool = Field(
        default=True, description="Pack examples without padding; attention stays per example."
    )
    eval_split: Fraction = Field(default="0.05", description="Share held out for evaluation.")
    completion_only_loss: bool = Field(
        default=True, description="Loss only on assistant/completion tokens, not on prompts."
    )


class MethodType(StrEnum):
    LORA = "lora"
    QLORA = "qlora"
    FULL = "full"


class LoraSettings(ApiModel):
    """LoRA adapter shape (ignored by full fine-tuning)."""

    rank: int = Field(default=16, ge=1, le=1024, description="LoRA rank r.")
    alpha: int = Field(default=32, ge=1, le=4096, description="LoRA alpha (scale = alpha/r).")
    dropout: Fraction = Field(default="0.05", description="Dropout on the LoRA path.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["all-linear"],
        min_length=1,
        description="Module names to adapt, or all-linear.",
    )


class Method(ApiModel):
    """Fine-tuning method."""

    type: MethodType = Field(
        default=MethodType.LORA, description="lora, qlora (4-bit NF4) or full."
    )
    lora: LoraSettings = Field(default_factory=LoraSettings, description="LoRA settings.")


class Scheduler(StrEnum):
    LINEAR = "linear"
    COSINE = "cosine"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"


class Hyperparameters(ApiModel):
    """Optimisation settings."""

    epochs: int = Field(default=1, ge=1, le=1000, description="Passes over the training split.")
    max_steps: int | None = Field(
        default=None, ge=1, description="Stop after this many optimizer steps (overrides epochs)."
    )
    learning_rate: PositiveDecimal = Field(default="2e-4", description="Peak learning rate.")
    batch_size: int = Field(default=4, ge=1, le=4096, description="Examples per device step.")
    gradient_accumulation_steps: int = Field(
        default=1, ge=1, le=1024, description="Micro-batches summed per optimizer step."
    )
    warmup_ratio: Fraction = Field(default="0.03", description="Share of steps to warm up.")
    weight_decay: Fraction = Field(default="0", description="AdamW weight decay.")
    lr_scheduler: Scheduler = Field(default=Scheduler.LINEAR, description="LR schedule.")
    seed: int = Field(default=42, ge=0, description="Seed for shuffling, splits and init.")


class Backend(StrEnum):
    AUTO = "auto"
    UNSLOTH = "unsloth"
    TRANSFORMERS = "transformers"


class Output(ApiModel):
    """What the job produces."""

    model: str | None = Field(
        default=None,
        pattern=DNS_LABEL,
        max_length=MODEL_NAME_MAX,
        description=(
            "Model name of the produced ModelVersion <model>-v<N> (a DNS-1123 label of at most"
            " 50 characters, so the version's name stays a valid label); default: the job name."
        ),
    )
    storage: StorageUri = Field(
        default="pvc://model-garden-artifacts",
        description=(
            "Where artifacts and checkpoints go: pvc://<claim>, file://<dir> or"
            " s3://<bucket>/<prefix> (with spec.storageSecret: artifacts uploaded when the run"
            " succeeds, checkpoints as each one is saved)."
        ),
    )
    merge: bool = Field(
        default=False, description="Also save the adapter merged into the base model."
    )


class Checkpointing(ApiModel):
    """Periodic checkpoints; a restarted pod resumes from the newest complete one."""

    every_steps: int = Field(default=100, ge=1, description="Save every N optimizer steps.")
    keep: int = Field(default=2, ge=1, le=100, description="How many checkpoints to keep.")
    keep_after_success: bool = Field(
        default=False,
        description=(
            "Keep the checkpoints once the job succeeded (default: the trainer deletes them after"
            " the artifacts are saved, so nothing piles up unseen; a failed job keeps them to"
            " resume)."
        ),
    )


class SchedulingWindow(ApiModel):
    """When the job may start (RFC 3339): not before ``notBefore``, and at ``notAfter`` at the
    latest, whatever the grid's intensity then (the deadline that bounds a carbon deferral)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.notBefore) || !has(self.notAfter)"
                    " || timestamp(self.notBefore) < timestamp(self.notAfter)",
                    "message": "notAfter must be later than notBefore",
                }
            ]
        }
    )

    not_before: datetime | None = Field(default=None, description="Do not start before this time.")
    not_after: datetime | None = Field(
        default=None,
        description=(
            "Start by this time at the latest, whatever the intensity (default: the operator's"
            " maxDeferral after creation)."
        ),
    )

    @model_validator(mode="after")
    def _ordered(self) -> SchedulingWindow:
        if self.not_before and self.not_after and self.not_before >= self.not_after:
            raise ValueError("notAfter must be later than notBefore")
        return self


PAUSE_BELOW_MAX = (
    "pauseAboveGridIntensity must be at least maxGridIntensity (the job would pause at an"
    " intensity it is allowed to start at)"
)


class CarbonSettings(ApiModel):
    """Where the energy is drawn, what the run may cost, and when it may run."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.pauseAboveGridIntensity) || !has(self.maxGridIntensity)"
                    " || self.pauseAboveGridIntensity >= self.maxGridIntensity",
                    "message": PAUSE_BELOW_MAX,
                }
            ]
        }
    )

    country: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="ISO 3166-1 alpha-3 country of the cluster, e.g. FRA; default: operator's.",
    )
    region: str | None = Field(
        default=None, max_length=64, description="Sub-national grid region, e.g. california."
    )
    budget_kg: PositiveDecimal | None = Field(
        default=None, description="Fail the job once its emissions exceed this many kg CO2e."
    )
    scheduling_window: SchedulingWindow | None = Field(
        default=None,
        description="When the job may start: not before notBefore, by notAfter at the latest.",
    )
    max_grid_intensity: int | None = Field(
        default=None,
        ge=0,
        le=10000,
        description=(
            "Start only while the grid's intensity (g CO2e/kWh, the operator's live provider or"
            " tables) is at or below this; until then the job is Deferred, up to the window's"
            " notAfter. A paused job resumes at or below it too."
        ),
    )
    pause_above_grid_intensity: int | None = Field(
        default=None,
        ge=0,
        le=10000,
        description=(
            "Pause a running job at a checkpoint while the intensity is above this (its Job is"
            " stopped with SIGTERM, which checkpoints, and made again later: it resumes from the"
            " checkpoint); at least maxGridIntensity."
        ),
    )

    @model_validator(mode="after")
    def _pause_not_below_start(self) -> CarbonSettings:
        pause, start = self.pause_above_grid_intensity, self.max_grid_intensity
        if pause is not None and start is not None and pause < start:
            raise ValueError(PAUSE_BELOW_MAX)
        return self

    @property
    def scheduled(self) -> bool:
        """Whether the job's start or run depends on the time or the grid."""
        return (
            self.scheduling_window is not None
            or self.max_grid_intensity is not None
            or self.pause_above_grid_intensity is not None
        )


class EvaluationSettings(ApiModel):
    """An evaluation at the end of training (the same as ``mg eval``), on the trained model."""

    prompts: list[Annotated[str, StringConstraints(min_length=1, max_length=EVAL_PROMPT_MAX)]] = (
        Field(
            default_factory=list,
            max_length=EVAL_PROMPTS_MAX,
            description="Prompts to generate greedy samples for (at most 16, 2000 chars each).",
        )
    )
    max_new_tokens: int = Field(
        default=32, ge=1, le=512, description="Most tokens generated per prompt."
    )
    dataset: StorageUri | None = Field(
        default=None,
        description="Held-out data to score; default: the job's own eval split (evalSplit).",
    )


class FineTuneJobSpec(ApiModel):
    """Desired state of a FineTuneJob. Changing it while the job runs has no effect but suspend."""

    base_model: BaseModelSource = Field(description="The model to fine-tune.")
    dataset: Dataset = Field(description="Training data.")
    method: Method = Field(default_factory=Method, description="lora, qlora or full.")
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    resources: Resources = Field(
        default_factory=Resources,
        description=(
            "Trainer pod compute. gpus above 1 run one training process per GPU under torchrun"
            " (data-parallel, transformers backend)."
        ),
    )
    nodes: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Nodes to train on, each with resources. Above 1 runs as a Kubeflow Trainer"
            " TrainJob, else a JobSet, where installed; refused otherwise (Failed,"
            " MultiNodeUnavailable)."
        ),
    )
    backend: Backend = Field(
        default=Backend.AUTO, description="auto picks unsloth on a CUDA GPU, else transformers."
    )
    output: Output = Field(default_factory=Output, description="The ModelVersion to produce.")
    checkpointing: Checkpointing = Field(default_factory=Checkpointing)
    storage_secret: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=SUBDOMAIN_MAX,
        description=(
            "Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (optionally"
            " AWS_ENDPOINT_URL, AWS_SESSION_TOKEN, AWS_DEFAULT_REGION) for s3:// datasets, base"
            " models and output, fed to the trainer as env; the produced ModelVersion gets it too."
        ),
    )
    carbon: CarbonSettings = Field(default_factory=CarbonSettings)
    evaluation: EvaluationSettings | None = Field(
        default=None,
        description=(
            "Evaluate the trained model at the end: loss, perplexity and samples, saved with the"
            " version (status.evaluation, model card, eval.json)."
        ),
    )
    image: str | None = Field(default=None, description="Trainer image override.")
    queue_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=LABEL_MAX,
        description="Kueue LocalQueue; the Job starts suspended.",
    )
    suspend: bool = Field(default=False, description="Suspend (or keep suspended) the job.")
    backoff_limit: int = Field(default=2, ge=0, le=20, description="Pod retries before Failed.")
    active_deadline_seconds: int | None = Field(
        default=None, ge=1, description="Fail the job when it runs longer than this."
    )


class TrainingProgressStatus(ApiModel):
    """The last progress the trainer reported."""

    step: int = Field(default=0, ge=0, description="Optimizer steps done.")
    total_steps: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Optimizer steps planned: spec.hyperparameters.maxSteps from the start when set,"
            " else the trainer's count once it has read the dataset (absent until then)."
        ),
    )
    epoch: float = Field(default=0.0, ge=0, description="Fractional epoch reached.")
    loss: float | None = Field(
        default=None,
        description="Last training loss, to 4 significant digits (display.round_loss).",
    )
    eval_loss: float | None = Field(
        default=None,
        description="Last evaluation loss, to 4 significant digits (display.round_loss).",
    )
    learning_rate: float | None = Field(default=None, description="Current learning rate.")
    tokens_per_second: float | None = Field(
        default=None, description="Real (non-padding) tokens trained per second."
    )
    eta_seconds: float | None = Field(default=None, description="Estimated seconds left.")


class TrainingCarbonStatus(CarbonReport):
    """Energy and emissions of the run so far, plus the figure people read."""

    emissions: str | None = Field(
        default=None,
        max_length=32,
        description="emissionsKg for people, e.g. '185 µg' or '1.2 kg' (display.format_emissions).",
    )

    @classmethod
    def of(cls, report: CarbonReport) -> TrainingCarbonStatus:
        """``report`` with its display figure filled in (what status.carbon should hold)."""
        wire = report.to_wire()
        wire.pop("emissions", None)
        return cls.model_validate({**wire, "emissions": format_emissions(report.emissions_kg)})


class SchedulingStatus(ApiModel):
    """Carbon-aware scheduling of the run: the intensity seen, the time shifted, the emissions
    avoided. ``avoidedKg`` compares with starting at once at the intensity seen first
    (``baselineGPerKwh``): energy × baseline − Σ each run segment's energy × the intensity when
    it (re)started; negative when waiting cost more."""

    intensity_g_per_kwh: float | None = Field(
        default=None, ge=0, description="The intensity seen last, g CO2e/kWh."
    )
    intensity_source: str | None = Field(
        default=None, max_length=200, description="Where it came from (live provider, table)."
    )
    intensity_time: str | None = Field(
        default=None, max_length=40, description="The time that figure refers to."
    )
    baseline_g_per_kwh: float | None = Field(
        default=None, ge=0, description="The intensity when the job was first seen."
    )
    first_seen: datetime | None = Field(default=None, description="When it was first seen.")
    deferred_seconds: float = Field(
        default=0.0, ge=0, description="How long the start was held back."
    )
    paused_seconds: float = Field(default=0.0, ge=0, description="Time spent paused in all.")
    pauses: int = Field(default=0, ge=0, description="How many times it was paused.")
    paused_since: datetime | None = Field(default=None, description="Set while paused.")
    paused_version: int | None = Field(
        default=None, ge=1, description="The version a paused job keeps for its resumption."
    )
    segment_intensity_g_per_kwh: float | None = Field(
        default=None, ge=0, description="The intensity when the current run segment started."
    )
    segment_start_energy_kwh: float = Field(
        default=0.0, ge=0, description="The run's energy when the current segment started."
    )
    finished_segments_grams: float = Field(
        default=0.0, ge=0, description="Σ energy × intensity of the segments before it, g."
    )
    avoided_kg: float | None = Field(
        default=None, description="Emissions avoided against starting at once, kg CO2e."
    )


class FineTuneJobStatus(ApiModel):
    """Observed state of a FineTuneJob."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status describes."
    )
    conditions: Conditions = Field(
        default_factory=list, description="Running, Succeeded, Failed (and Queued, Suspended)."
    )
    progress: TrainingProgressStatus | None = Field(default=None, description="Live progress.")
    carbon: TrainingCarbonStatus | None = Field(
        default=None, description="Energy and emissions so far."
    )
    backend: str | None = Field(default=None, description="Backend the trainer used.")
    job_name: str | None = Field(
        default=None,
        description="The workload running it: a batch/v1 Job, or for spec.nodes above 1 the"
        " Kubeflow Trainer TrainJob or JobSet that workloadKind names.",
    )
    workload_kind: Literal["Job", "TrainJob", "JobSet"] | None = Field(
        default=None,
        description="The kind of jobName: Job (batch/v1, one node), TrainJob"
        " (trainer.kubeflow.org/v1alpha1) or JobSet (jobset.x-k8s.io/v1alpha2).",
    )
    model_version: str | None = Field(default=None, description="The ModelVersion produced.")
    start_time: datetime | None = Field(default=None, description="When training started.")
    completion_time: datetime | None = Field(default=None, description="When it ended.")
    recommendations: list[RecommendationBrief] = Field(
        default_factory=list,
        max_length=MAX_STATUS_RECOMMENDATIONS,
        description="Carbon recommendations, biggest estimated saving first.",
    )
    scheduling: SchedulingStatus | None = Field(
        default=None, description="Carbon-aware scheduling (spec.carbon's window and thresholds)."
    )


FTJ_NAME_RULE = (
    f"metadata.name must be at most {MODEL_NAME_MAX} characters unless spec.output.model is set:"
    " the job's name is then the model name of the ModelVersion <name>-v<N>"
)


class FineTuneJob(ApiModel):
    """A fine-tuning run of a base model on a dataset."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.spec.output) && has(self.spec.output.model))"
                    f" || self.metadata.name.size() <= {MODEL_NAME_MAX}",
                    "message": FTJ_NAME_RULE,
                }
            ]
        },
    )

    api_version: Literal["modelgarden.dev/v1alpha1"] = "modelgarden.dev/v1alpha1"
    kind: Literal["FineTuneJob"] = "FineTuneJob"
    metadata: LabelNamedMeta
    spec: FineTuneJobSpec
    status: FineTuneJobStatus = Field(default_factory=FineTuneJobStatus)

    @model_validator(mode="after")
    def _name_fits_the_model_version(self) -> FineTuneJob:
        if self.spec.output.model is None and len(self.metadata.name) > MODEL_NAME_MAX:
            raise ValueError(f"{FTJ_NAME_RULE} (got {len(self.metadata.name)} characters)")
        return self

    @property
    def output_model(self) -> str:
        """The model name the produced ModelVersion carries (spec.output.model or job name)."""
        return self.spec.output.model or self.metadata.name
