"""Response and request bodies of the read API (the resources themselves are model_garden.api's)."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.api.modelversion import Stage

T = TypeVar("T")


class Wire(BaseModel):
    """camelCase on the wire, like the CRDs."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Page(Wire, Generic[T]):
    items: list[T]
    continue_: str | None = Field(default=None, alias="continue")
    total: int


class JobList(Page[FineTuneJob]):
    pass


class VersionList(Page[ModelVersion]):
    pass


class DeploymentList(Page[InferenceDeployment]):
    pass


class Info(Wire):
    mode: Literal["local", "cluster"]
    version: str
    namespaces: list[str]
    prometheus: bool
    writes: Literal["token", "caller"]


class RegionRow(Wire):
    region: str | None
    emissions_kg: float
    energy_kwh: float


class Overview(Wire):
    running_jobs: int
    serving_deployments: int
    versions: int
    emissions_this_week_kg: float
    energy_this_week_kwh: float
    by_region: list[RegionRow]
    recent_jobs: list[FineTuneJob]


class JobPoint(Wire):
    time: str
    step: int
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    tokens_per_second: float | None = None


class JobHistory(Wire):
    points: list[JobPoint]
    source: Literal["prometheus", "history"]


class ServingPoint(Wire):
    time: str
    energy_kwh: float
    emissions_kg: float
    tokens: int
    tokens_per_second: float | None = None
    joules_per_token: float | None = None
    grams_per_1k_tokens: float | None = Field(default=None, alias="gramsPer1kTokens")


class DeploymentHistory(Wire):
    points: list[ServingPoint]
    source: Literal["prometheus", "history"]


class Event(Wire):
    time: str | None
    type: str | None
    reason: str | None
    message: str | None


class EventList(Wire):
    items: list[Event]


class Lineage(Wire):
    job: FineTuneJob | None
    version: ModelVersion
    deployments: list[InferenceDeployment]


class Card(Wire):
    markdown: str


class Promote(Wire):
    stage: Stage


class NewDeployment(Wire):
    namespace: str = "default"
    name: str
    version: str
    adapters: list[str] = Field(default_factory=list)
    replicas: int = Field(default=1, ge=0, le=1000)


class Scale(Wire):
    replicas: int = Field(ge=0, le=1000)


class DatasetInfo(Wire):
    namespace: str
    name: str
    format: str
    rows: int
    bytes: int
    modified: str


class DatasetList(Wire):
    items: list[DatasetInfo]


class DatasetPreview(Wire):
    format: str
    rows: list[dict[str, Any]]
    total: int


class TokenStats(Wire):
    total: int
    mean: float
    p50: float
    p95: float
    max: int


class CharacterStats(Wire):
    total: int
    mean: float
    max: int


class DatasetStats(Wire):
    rows: int
    format: str
    tokens: TokenStats | None
    characters: CharacterStats


class Uploaded(Wire):
    namespace: str
    name: str
    format: str
    rows: int


class Run(Wire):
    namespace: str
    job: str
    model: str
    status: str
    method: str
    hyperparameters: dict[str, Any]
    final_loss: float | None
    final_eval_loss: float | None
    duration_seconds: float | None
    energy_kwh: float | None
    emissions_kg: float | None


class Experiment(Wire):
    name: str
    runs: list[Run]


class ExperimentList(Wire):
    items: list[Experiment]


class SummaryRow(Wire):
    key: str | None
    energy_kwh: float
    emissions_kg: float
    operations: int
    measured_share: float


class CarbonSummary(Wire):
    by: str
    rows: list[SummaryRow]


class ModelCarbon(Wire):
    model: str
    namespace: str
    training_kg: float
    serving_kg: float
    total_kg: float
    tokens: int
    grams_per_1k_tokens: float | None = Field(alias="gramsPer1kTokens")


class ModelCarbonList(Wire):
    items: list[ModelCarbon]


class TimelinePoint(Wire):
    day: str
    training: float
    serving: float
    energy_kwh: float


class Timeline(Wire):
    points: list[TimelinePoint]


class ErrorItem(Wire):
    field: str | None = None
    line: int | None = None
    message: str


class ValidationDetail(Wire):
    message: str
    errors: list[ErrorItem]


class RecommendationItem(Wire):
    """One piece of carbon advice (model_garden.carbon.recommend), with its estimated saving."""

    rule: str
    target_kind: str
    target: str
    namespace: str | None
    message: str
    saving_kg: float
    assumptions: list[str]
    confidence: Literal["high", "medium", "low"]


class NotJudged(Wire):
    """A rule that could not judge an object (empty target: any object), and what it lacked."""

    rule: str
    target_kind: str
    target: str
    namespace: str | None
    reason: str


class RecommendationList(Wire):
    items: list[RecommendationItem]
    unknown: list[NotJudged]
    total_saving_kg: float
