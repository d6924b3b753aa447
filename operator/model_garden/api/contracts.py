"""The documents the operator, trainer, serving launcher, CLI and read API exchange.

One definition each (see DESIGN.md, "Contracts between the pieces"). They travel as JSON: in a
ConfigMap mounted into the pod (configs), over HTTP (progress, serving carbon), and through the
container's termination message (the training result, which must stay under 4 KB).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from .common import ApiModel, CarbonMethod, CarbonReport
from .finetunejob import FineTuneJobSpec
from .inferencedeployment import InferenceDeploymentSpec

TERMINATION_MESSAGE_LIMIT = 4096
"""Kubernetes keeps at most 4096 bytes of a container's termination message."""

DEFAULT_PROGRESS_PORT = 8090
DEFAULT_API_PORT = 8000
DEFAULT_METER_PORT = 9400
HF_TOKEN_ENV = "HF_TOKEN"
API_KEY_ENV = "MODEL_GARDEN_API_KEY"


class Identity(ApiModel):
    """Which resource a run belongs to (for labels, metrics and the result)."""

    name: str
    namespace: str = "default"
    uid: str | None = None


class TrainingRuntime(ApiModel):
    """What the operator (or local mode) resolved from the spec for this pod."""

    base_model: str = Field(description="Local directory of the base model, or a hub id.")
    base_model_revision: str | None = Field(default=None, description="Hub revision.")
    dataset_path: str = Field(description="Local path of the dataset file or directory.")
    output_dir: str = Field(description="Artifacts go to <output_dir>/{adapter,merged}.")
    checkpoint_dir: str = Field(description="Checkpoints: <checkpoint_dir>/checkpoint-<step>.")
    artifact_uri: str | None = Field(
        default=None, description="URI of output_dir as users see it (pvc://…), for the result."
    )
    progress_port: int = Field(default=DEFAULT_PROGRESS_PORT, ge=0, le=65535)
    termination_message_path: str = "/dev/termination-log"
    country: str = Field(default="USA", description="ISO alpha-3 country for the grid intensity.")
    region: str | None = None
    grid_overrides: dict[str, float] = Field(
        default_factory=dict,
        description="The cluster's grid intensities by region or country (g/kWh): they win.",
    )
    hf_token_env: str = Field(
        default=HF_TOKEN_ENV,
        description="Name of the env var holding the Hub token (not its value).",
    )
    threads: int | None = Field(default=None, ge=1, description="CPU threads for torch.")
    eval_dataset_path: str | None = Field(
        default=None,
        description="Local path of spec.evaluation.dataset (None: score the job's eval split).",
    )


class TrainingConfig(ApiModel):
    """Everything one trainer run needs: ``python -m model_garden.training --config FILE``."""

    job: Identity
    spec: FineTuneJobSpec
    runtime: TrainingRuntime
    model_version: int | None = Field(
        default=None, description="The version number the output will get, when known."
    )


class Outcome(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ArtifactKind(StrEnum):
    ADAPTER = "adapter"
    MERGED = "merged"
    FULL = "full"


class ArtifactFile(ApiModel):
    """One saved artifact directory."""

    kind: ArtifactKind
    path: str = Field(description="Path inside the pod.")
    uri: str | None = Field(default=None, description="The same, as a pvc:// or file:// URI.")
    size_bytes: int = Field(ge=0)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


class TrainingMetrics(ApiModel):
    train_loss: float | None = None
    eval_loss: float | None = None
    initial_eval_loss: float | None = None
    steps: int = 0
    epochs: float = 0.0
    train_tokens: int = 0
    tokens_per_second: float | None = None
    truncated_examples: int = 0


RESULT_SAMPLE_CHARS = 100
"""Longest prompt or completion a TrainingResult keeps (the full ones are in eval.json)."""


class EvaluationSample(ApiModel):
    prompt: str
    completion: str


class TrainingEvaluation(ApiModel):
    """spec.evaluation's figures at the end of training; the full samples are in ``report``."""

    dataset: str = Field(description="What was scored: a URI, or the job's eval split.")
    loss: float | None = Field(default=None, description="Mean token cross-entropy, nats.")
    perplexity: float | None = Field(default=None, description="exp(loss).")
    examples: int = Field(default=0, ge=0)
    tokens: int = Field(default=0, ge=0, description="Tokens that carried loss.")
    evaluated_at: str | None = None
    report: str | None = Field(default=None, description="URI of the full report (eval.json).")
    samples: list[EvaluationSample] = Field(
        default_factory=list, description="Samples, cut to RESULT_SAMPLE_CHARS each."
    )

    def shortened(self) -> TrainingEvaluation:
        """The same with every prompt and completion cut to :data:`RESULT_SAMPLE_CHARS`."""
        cut = RESULT_SAMPLE_CHARS
        samples = [
            EvaluationSample(
                prompt=s.prompt[:cut] + ("…" if len(s.prompt) > cut else ""),
                completion=s.completion[:cut] + ("…" if len(s.completion) > cut else ""),
            )
            for s in self.samples
        ]
        return self.model_copy(update={"samples": samples})


class TrainingResult(ApiModel):
    """What a finished or failed run reports (termination message and output dir; < 4 KB)."""

    outcome: Outcome
    reason: str = Field(default="", description="CamelCase reason, e.g. DatasetError.")
    message: str = Field(default="", max_length=1500, description="What went wrong, for a person.")
    backend: str | None = None
    method: str | None = None
    base_model: str | None = None
    metrics: TrainingMetrics = Field(default_factory=TrainingMetrics)
    carbon: CarbonReport = Field(default_factory=CarbonReport)
    artifacts: list[ArtifactFile] = Field(default_factory=list)
    duration_seconds: float = 0.0
    resumed_from_step: int | None = None
    parallelism: str | None = Field(
        default=None,
        description="How the training processes split the model: fsdp (sharded weights,"
        " gradients and optimizer state), replicated (a copy per process) or single.",
    )
    evaluation: TrainingEvaluation | None = Field(
        default=None, description="spec.evaluation's figures (samples shortened)."
    )

    def to_termination_message(self) -> str:
        """Compact JSON that fits Kubernetes' 4096-byte termination message: drops evaluation
        samples from the last (they are in eval.json), then trims the message."""
        text = self.model_dump_json(by_alias=True, exclude_none=True)
        if len(text.encode()) <= TERMINATION_MESSAGE_LIMIT:
            return text
        trimmed = self
        if self.evaluation is not None and self.evaluation.samples:
            samples = list(self.evaluation.samples)
            while samples and len(text.encode()) > TERMINATION_MESSAGE_LIMIT:
                samples.pop()
                evaluation = self.evaluation.model_copy(update={"samples": samples})
                trimmed = self.model_copy(update={"evaluation": evaluation})
                text = trimmed.model_dump_json(by_alias=True, exclude_none=True)
            if len(text.encode()) <= TERMINATION_MESSAGE_LIMIT:
                return text
        overflow = len(text.encode()) - TERMINATION_MESSAGE_LIMIT + 16
        trimmed = trimmed.model_copy(
            update={"message": self.message[: max(0, len(self.message) - overflow)] + "…"}
        )
        return trimmed.model_dump_json(by_alias=True, exclude_none=True)


class TrainingState(StrEnum):
    STARTING = "Starting"
    LOADING = "Loading"
    TRAINING = "Training"
    EVALUATING = "Evaluating"
    SAVING = "Saving"
    DONE = "Done"
    FAILED = "Failed"


class TrainingProgress(ApiModel):
    """What the trainer's ``/progress`` returns while the run lasts."""

    state: TrainingState = TrainingState.STARTING
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None
    energy_kwh: float = 0.0
    emissions_kg: float = 0.0
    carbon_method: CarbonMethod = CarbonMethod.ESTIMATED


class ServedArtifact(ApiModel):
    """A resolved model or adapter directory, by the name clients call it."""

    name: str
    path: str
    model_version: str | None = None


class ServingPorts(ApiModel):
    api: int = Field(default=DEFAULT_API_PORT, ge=1, le=65535)
    meter: int = Field(default=DEFAULT_METER_PORT, ge=1, le=65535)


class ServingConfig(ApiModel):
    """Everything the serving launcher needs: ``python -m model_garden.serving --config FILE``."""

    deployment: Identity
    spec: InferenceDeploymentSpec
    model: ServedArtifact = Field(description="Merged model or base model; name = served name.")
    adapters: list[ServedArtifact] = Field(default_factory=list, description="LoRA adapters.")
    ports: ServingPorts = Field(default_factory=ServingPorts)
    host: str = "0.0.0.0"
    country: str = "USA"
    region: str | None = None
    grid_overrides: dict[str, float] = Field(
        default_factory=dict,
        description="The cluster's grid intensities by region or country (g/kWh): they win.",
    )
    api_key_env: str = Field(
        default=API_KEY_ENV, description="Env var holding the API key (never the key itself)."
    )
    api_key_file: str | None = Field(
        default=None,
        description=(
            "A file holding the API key (a mounted Secret); preferred over api_key_env, and vLLM "
            "restarts when its content changes, so a rotated Secret takes effect."
        ),
    )
    dynamic_adapters: bool = Field(
        default=False,
        description=(
            "Load and drop adapters at run time when the config changes (needs an API key); "
            "false serves only the adapters listed at start, with runtime loading off."
        ),
    )
    device: str = Field(default="auto", description="auto, cpu or cuda.")
    kepler_prometheus_url: str | None = Field(
        default=None,
        description="Where Kepler runs: the Prometheus the meter reads the pod's CPU/DRAM joules from.",
    )


class AdapterCarbon(ApiModel):
    """Cumulative active figures the meter attributed to one adapter (or the base model)."""

    tokens: int = Field(default=0, ge=0, description="Prompt plus generated tokens.")
    energy_joules: float = Field(default=0.0, ge=0, description="Active energy, J.")
    emissions_grams: float = Field(default=0.0, ge=0, description="Active emissions, g CO2e.")


class ServingCarbon(ApiModel):
    """What the carbon meter reports: cumulative since the pod started, plus a sliding window.

    Cumulative figures are split into active and idle (``energy = active + idle``, the same for
    emissions): idle energy counts in the totals, never in a per-token figure. The per-token
    figures are over the last ``window_seconds`` and active energy only, so the operator can sum
    the window's grams and tokens over replicas (a ratio of sums, not a mean of ratios).
    """

    energy_joules: float = Field(default=0.0, ge=0)
    active_energy_joules: float = Field(default=0.0, ge=0)
    idle_energy_joules: float = Field(default=0.0, ge=0)
    emissions_grams: float = Field(default=0.0, ge=0)
    active_emissions_grams: float = Field(default=0.0, ge=0)
    idle_emissions_grams: float = Field(default=0.0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    generation_tokens: int = Field(default=0, ge=0)
    requests: int = Field(default=0, ge=0)
    window_seconds: float = Field(default=300.0, gt=0, description="The sliding window, s.")
    window_active_energy_joules: float = Field(default=0.0, ge=0)
    window_active_emissions_grams: float = Field(default=0.0, ge=0)
    window_tokens: int = Field(default=0, ge=0)
    joules_per_token: float | None = Field(
        default=None, description="window_active_energy_joules / window_tokens."
    )
    grams_per_1k_tokens: float | None = Field(
        default=None, description="window_active_emissions_grams / window_tokens * 1000."
    )
    grid_intensity_g_per_kwh: float | None = None
    country: str | None = None
    region: str | None = None
    grid_source: str | None = None
    grid_time: str | None = None
    method: CarbonMethod = CarbonMethod.ESTIMATED
    component_sources: dict[str, str] = Field(
        default_factory=dict, description="gpu/cpu/ram -> how the meter obtained each figure."
    )
    base_model: str | None = Field(
        default=None, description="The base model's served name: its key in by_adapter."
    )
    by_adapter: dict[str, AdapterCarbon] = Field(
        default_factory=dict,
        description=(
            "Active ticks in which vLLM listed no adapter (the base model's) or one adapter;"
            " see serving/adapter_carbon.py for what vLLM does not list."
        ),
    )
    unattributed_tokens: int = Field(
        default=0, ge=0, description="Tokens of ticks that mixed adapters (the shared bucket)."
    )
    unattributed_energy_joules: float = Field(default=0.0, ge=0)
    unattributed_emissions_grams: float = Field(default=0.0, ge=0)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.generation_tokens


M = TypeVar("M", bound=BaseModel)


def read_document(model: type[M], path: str | Path) -> M:
    """Parse a contract document from a JSON file (a mounted ConfigMap key, a result file)."""
    return model.model_validate_json(Path(path).read_text(encoding="utf-8"))


def write_document(doc: ApiModel, path: str | Path) -> None:
    """Write a contract document atomically (write a sibling, then rename): no half-written file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(
        doc.model_dump_json(by_alias=True, exclude_none=True, indent=2), encoding="utf-8"
    )
    tmp.replace(target)
