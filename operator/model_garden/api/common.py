"""Building blocks shared by the three resources and the contracts: base model, conditions, units."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from .fields import (
    DNS_1035_LABEL,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    LABEL_MAX,
    SUBDOMAIN_MAX,
    ListMap,
    Quantity,
    scalar_error,
    scalar_type,
)

GROUP = "modelgarden.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


_FIELD_SCALARS: dict[tuple[type, str], Any] = {}


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python, no unknown fields.

    Unknown fields are refused (not silently dropped) so a typo in a manifest is an error that
    names the field, as the API server does with a structural schema.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _as_strict_as_the_api_server(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse what the API server refuses, where pydantic would coerce (see ``scalar_error``)."""
        if info.field_name is None or value is None:
            return value
        key = (cls, info.field_name)
        if key not in _FIELD_SCALARS:  # introspect each field's type once, not per validation
            _FIELD_SCALARS[key] = scalar_type(cls.model_fields[info.field_name].annotation)
        problem = scalar_error(_FIELD_SCALARS[key], value)
        if problem:
            raise ValueError(problem)
        return value

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict as Kubernetes and the contracts carry it (camelCase, no Nones)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def decimal_value(value: str) -> float:
    """The float a decimal string stands for (for the ML code, never for the API)."""
    return float(Decimal(value))


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One observation of the resource's state, as the Kubernetes API conventions define it."""

    type: str = Field(description="Condition type in CamelCase, e.g. Ready or Succeeded.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="",
        description="A CamelCase reason a program can switch on, e.g. OOMKilled.",
        pattern=r"^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?)?$",
    )
    message: str = Field(default="", description="A sentence a person can act on.")
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed (not when it was last checked)."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this condition was set from."
    )


Conditions = Annotated[list[Condition], ListMap("type")]
"""A resource's conditions: one per type."""


def utcnow() -> datetime:
    """Now, in UTC, at second precision (what Kubernetes stores for timestamps)."""
    return datetime.now(UTC).replace(microsecond=0)


def set_condition(
    conditions: list[Condition],
    type: str,
    status: ConditionStatus | str,
    reason: str = "",
    message: str = "",
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> list[Condition]:
    """Return ``conditions`` with ``type`` set; the input list is left untouched.

    ``lastTransitionTime`` moves only when the status value changes: a reason or message
    update keeps the time, so "Running since …" stays true across progress updates.
    """
    status = ConditionStatus(status)
    previous = get_condition(conditions, type)
    unchanged = (
        previous is not None
        and ConditionStatus(previous.status) == status
        and previous.last_transition_time is not None
    )
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=previous.last_transition_time
        if unchanged and previous is not None
        else (now or utcnow()),
        observed_generation=observed_generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type else c for c in conditions]


def get_condition(conditions: list[Condition], type: str) -> Condition | None:
    """The condition of ``type``, or None."""
    return next((c for c in conditions if c.type == type), None)


def is_true(conditions: list[Condition], type: str) -> bool:
    cond = get_condition(conditions, type)
    return cond is not None and cond.status == ConditionStatus.TRUE


class ObjectMeta(ApiModel):
    """The part of metadata our code reads; the rest is carried but not modelled."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=SUBDOMAIN_MAX, description="Object name.")
    namespace: str | None = Field(default=None, description="Namespace of the object.")
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class LabelNamedMeta(ObjectMeta):
    """Metadata of a kind whose name becomes a label value and a child's name prefix."""

    name: str = Field(
        pattern=DNS_LABEL,
        max_length=LABEL_MAX,
        description=(
            "Object name: a DNS-1123 label (lowercase letters, digits and '-', at most 63),"
            " since it is carried as a label value and prefixes the names of its children."
        ),
    )


class ServiceNamedMeta(ObjectMeta):
    """Metadata of a kind whose name is also the name of a Service."""

    name: str = Field(
        pattern=DNS_1035_LABEL,
        max_length=LABEL_MAX,
        description=(
            "Object name: a DNS-1035 label (a lowercase letter first, then lowercase letters,"
            " digits and '-', at most 63), since its Service carries the same name."
        ),
    )


class SecretKeyRef(ApiModel):
    """A key of a Secret in the resource's namespace; its value is only ever read into an env var."""

    name: str = Field(pattern=DNS_SUBDOMAIN, max_length=SUBDOMAIN_MAX, description="Secret name.")
    key: str = Field(
        default="token",
        pattern=r"^[-._a-zA-Z0-9]+$",
        max_length=SUBDOMAIN_MAX,
        description="Key within the Secret.",
    )


class Toleration(ApiModel):
    """A pod toleration (same fields as core/v1 Toleration)."""

    key: str | None = Field(default=None, description="Taint key; empty with Exists matches all.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (default Equal)."
    )
    value: str | None = Field(default=None, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty matches all."
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated."
    )


class Resources(ApiModel):
    """Compute a pod asks for. GPUs are requested as ``nvidia.com/gpu``."""

    gpus: int = Field(default=0, ge=0, le=64, description="Whole GPUs per pod.")
    cpu: Quantity | None = Field(default=None, description="CPU request and limit, e.g. '4'.")
    memory: Quantity | None = Field(
        default=None, description="Memory request and limit, e.g. '32Gi'."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the pod must land on."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Taints the pod tolerates (GPU nodes are often tainted)."
    )


class RecommendationBrief(ApiModel):
    """One carbon recommendation in a status (``mg carbon recommend`` gives the assumptions)."""

    rule: str = Field(max_length=64, description="The rule that fired, e.g. idle-deployment.")
    message: str = Field(max_length=400, description="What to do, and why.")
    saving_kg: float = Field(ge=0, description="Estimated saving, kg CO2e (2 significant digits).")


MAX_STATUS_RECOMMENDATIONS = 3


class CarbonMethod(StrEnum):
    MEASURED = "measured"
    ESTIMATED = "estimated"


class CarbonReport(ApiModel):
    """Energy and emissions of one operation (a training run, a served window).

    Each figure says how it was obtained: ``measured`` (RAPL, NVML, a node exporter) or
    ``estimated`` (CodeCarbon's model of the hardware), and which grid intensity it used.
    """

    energy_kwh: float = Field(default=0.0, ge=0, description="Total energy, kWh.")
    cpu_energy_kwh: float = Field(default=0.0, ge=0, description="CPU share of the energy, kWh.")
    gpu_energy_kwh: float = Field(default=0.0, ge=0, description="GPU share of the energy, kWh.")
    ram_energy_kwh: float = Field(default=0.0, ge=0, description="RAM share of the energy, kWh.")
    emissions_kg: float = Field(default=0.0, ge=0, description="Emissions, kg CO2e.")
    grid_intensity_g_per_kwh: float | None = Field(
        default=None, ge=0, description="Grid carbon intensity used, g CO2e per kWh."
    )
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-3 country code.")
    region: str | None = Field(
        default=None, description="Cloud or sub-national region, when known."
    )
    grid_source: str | None = Field(
        default=None,
        max_length=200,
        description="Where the intensity came from: override, live provider or table (and year).",
    )
    grid_time: str | None = Field(
        default=None,
        max_length=40,
        description="The time the intensity refers to: an instant (live) or a year (tables).",
    )
    method: CarbonMethod = Field(
        default=CarbonMethod.ESTIMATED, description="measured if every figure was measured."
    )
    component_methods: dict[str, CarbonMethod] = Field(
        default_factory=dict, description="cpu/gpu/ram -> measured or estimated."
    )
    component_sources: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "cpu/gpu/ram -> how the figure was obtained, e.g. 'rapl', 'nvml (zeus 0.16.0)',"
            " 'codecarbon ram model', 'kepler:kepler_pod_cpu_joules_total{zone=dram}'."
        ),
    )


def split_uri(uri: str) -> tuple[str, str]:
    """``pvc://claim/a/b`` -> ("pvc", "claim/a/b")."""
    match = re.match(r"^([a-z0-9]+)://(.*)$", uri)
    if not match:
        raise ValueError(f"{uri!r} is not a URI of the form scheme://path")
    return match.group(1), match.group(2)


def describe_errors(exc: Exception, prefix: str = "") -> list[str]:
    """One line per problem, each naming the field as users write it: ``spec.dataset.format: …``.

    Works for pydantic's ValidationError (locations use the camelCase names of the manifest);
    other exceptions become a single line.
    """
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return [f"{prefix}{exc}"]
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("function-after", "function-before"))
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{prefix}{loc}: {message}" if loc else f"{prefix}{message}")
    return lines
