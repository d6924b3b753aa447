"""One status builder for every planner: copy the status, change it, write only what changed.

A planner starts a :class:`StatusDraft` from the resource it reconciles, sets conditions and
fields as it decides, and puts ``draft.patch()`` in its plan: the top-level fields that differ
from what the API server holds, or None when nothing did (so re-planning an applied plan is
empty). ``set_condition`` says whether the condition's status or reason changed: that is when a
planner posts an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from model_garden.api.common import (
    Condition,
    ConditionStatus,
    describe_errors,
    set_condition,
    utcnow,
)

from .plan import Plan


def timestamp(at: datetime) -> str:
    """The one way the operator writes a time: RFC 3339 in UTC with a ``Z``, as Kubernetes does."""
    return at.isoformat().replace("+00:00", "Z")


class _Meta(Protocol):
    @property
    def generation(self) -> int | None: ...


class _Status(Protocol):
    @property
    def conditions(self) -> list[Condition]: ...

    def to_wire(self) -> dict[str, Any]: ...


class Resource(Protocol):
    """What the draft reads of a typed resource (FineTuneJob, ModelVersion, InferenceDeployment)."""

    @property
    def metadata(self) -> _Meta: ...

    @property
    def status(self) -> _Status: ...


def _conditions(raw: Any) -> list[Condition]:
    out = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(Condition.model_validate(item))
        except ValidationError:
            continue  # not ours to keep: a condition we cannot read is dropped on the next write
    return out


class StatusDraft:
    """The status being planned for one resource at ``now``."""

    def __init__(
        self,
        resource: Resource | Mapping[str, Any],
        now: datetime,
        merged: tuple[str, ...] = (),
    ) -> None:
        if isinstance(resource, Mapping):  # a body the models refuse (InvalidSpec)
            self.current: dict[str, Any] = dict(resource.get("status") or {})
            self.generation: int | None = (resource.get("metadata") or {}).get("generation")
            self.conditions = _conditions(self.current.get("conditions"))
        else:
            self.current = resource.status.to_wire()
            self.generation = resource.metadata.generation
            self.conditions = list(resource.status.conditions)
        self.now = now
        self.merged = merged
        """Object fields patched key by key (only what changed): state a planner accumulates
        (e.g. FineTuneJob ``scheduling``), which a plan made from a body older than the last
        write must not roll back wholesale."""
        self.fields: dict[str, Any] = dict(self.current)
        if self.generation is not None:
            self.fields["observedGeneration"] = self.generation

    def condition(self, type: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type), None)

    def set_condition(self, type: str, status: ConditionStatus, reason: str, message: str) -> bool:
        """Set a condition; True when its status or reason changed (worth an event)."""
        before = self.condition(type)
        self.conditions = set_condition(
            self.conditions, type, status, reason, message, self.generation, self.now
        )
        return before is None or before.status != status or before.reason != reason

    def stamp(self, field: str, at: datetime | str | None = None) -> None:
        """Record when something first happened (``startTime``…): set once, never moved."""
        if self.fields.get(field):
            return
        if isinstance(at, str) and at:
            self.fields[field] = at
        else:
            self.fields[field] = timestamp(at if isinstance(at, datetime) else self.now)

    def patch(self) -> dict[str, Any] | None:
        """The top-level fields that differ from the current status (None: nothing changed)."""
        if self.conditions or "conditions" in self.current:
            self.fields["conditions"] = [c.to_wire() for c in self.conditions]
        changed = {k: v for k, v in self.fields.items() if self.current.get(k) != v}
        for key in self.merged:
            before, after = self.current.get(key), changed.get(key)
            if isinstance(before, dict) and isinstance(after, dict):
                changed[key] = _changed_keys(before, after)
        return changed or None


def _changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch from ``before`` to ``after``, one level deep (None removes a key)."""
    patch = {k: v for k, v in after.items() if before.get(k) != v}
    patch.update({k: None for k in before if k not in after})
    return patch


def plan_invalid(kind: str, body: Mapping[str, Any], exc: ValidationError) -> Plan:
    """A spec the models refuse (the CRD's rules would have): say so in a condition, once.

    Here, beside the draft, so the operator and local mode share it without the API client.
    """
    message = f"The spec is invalid: {'; '.join(describe_errors(exc)[:3])}"
    draft = StatusDraft(body, utcnow())
    if kind == "FineTuneJob":
        changed = draft.set_condition("Failed", ConditionStatus.TRUE, "InvalidSpec", message)
    else:
        changed = draft.set_condition("Ready", ConditionStatus.FALSE, "InvalidSpec", message)
    plan = Plan(status=draft.patch())
    if changed:
        plan.event("Warning", "InvalidSpec", message)
    return plan
