"""What a planner returns and the helpers every planner shares (labels, owner refs, drift checks).

A plan is data: the executor turns it into API calls. Planners are pure functions of the
resource, what was observed of its children and ``now``, so the same inputs give the same plan
and re-running a plan after it was applied gives an empty one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from model_garden.api.labels import (
    FIELD_MANAGER,
    LABEL_COMPONENT,
    LABEL_FTJ_UID,
    MANAGED_BY,
    OPERATOR_NAME,
)

# The executor (and older imports) read these names here; they are defined in api.labels.
__all__ = [
    "FIELD_MANAGER",
    "LABEL_FTJ_UID",
    "MANAGED_BY",
    "OPERATOR_NAME",
    "Event",
    "ObjectRef",
    "Plan",
    "child_meta",
    "child_name",
    "is_subset",
    "owner_labels",
    "owner_reference",
    "stable_hash",
]

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class ObjectRef:
    """Enough to address one object: apiVersion, kind, namespace, name."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event on the reconciled resource: a sentence a person reads."""

    type: EventType
    reason: str
    message: str
    if_created: str | None = None
    """Post only if the executor really created the object of this name (not AlreadyExists)."""


@dataclass
class Plan:
    """The changes that bring the world to the resource's spec, in execution order.

    ``create``: objects made once and never updated (Jobs, ModelVersions): AlreadyExists is
    success. ``apply``: objects kept equal to the desired state (server-side apply).
    ``patch``: merge patches to existing objects (a Job's suspend, a finalizer list).
    ``delete``: NotFound is success. ``status``: merge patch of the resource's status
    (None when nothing changed). ``events``: posted on the resource.
    """

    create: list[dict[str, Any]] = field(default_factory=list)
    apply: list[dict[str, Any]] = field(default_factory=list)
    patch: list[tuple[ObjectRef, dict[str, Any]]] = field(default_factory=list)
    delete: list[ObjectRef] = field(default_factory=list)
    status: dict[str, Any] | None = None
    events: list[Event] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    """Filled by the executor: names of the objects it created (for ``Event.if_created``)."""

    @property
    def empty(self) -> bool:
        return not (
            self.create or self.apply or self.patch or self.delete or self.status or self.events
        )

    def details(self) -> list[str]:
        """Human sentences describing the plan (for logs)."""
        out = [f"Creating {o['kind']} {o['metadata']['name']}" for o in self.create]
        out += [f"Applying {o['kind']} {o['metadata']['name']}" for o in self.apply]
        out += [f"Patching {r.kind} {r.name}" for r, _ in self.patch]
        out += [f"Deleting {r.kind} {r.name}" for r in self.delete]
        if self.status:
            out.append("Updating status")
        return out

    def event(
        self, type: EventType, reason: str, message: str, if_created: str | None = None
    ) -> None:
        self.events.append(Event(type, reason, message, if_created))


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """A controller ownerReference to ``owner`` (children are garbage-collected with it)."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_meta(
    owner: dict[str, Any], name: str, labels: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """metadata of a child: same namespace, our labels, a controller ownerReference."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": owner["metadata"]["namespace"],
        "labels": {MANAGED_BY: OPERATOR_NAME, **labels},
        "ownerReferences": [owner_reference(owner)],
    }
    meta.update(extra)
    return meta


def owner_labels(
    component: str,
    name: tuple[str, str],
    uid: tuple[str, str | None],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Labels of every child of one resource: ``name`` (label, owner's name) for people,
    ``uid`` (label, owner's uid; left out while unknown) for the operator's matching, so a
    child of a deleted-and-recreated resource of the same name is never taken for its own."""
    out = {MANAGED_BY: OPERATOR_NAME, name[0]: name[1], **(extra or {})}
    out[LABEL_COMPONENT] = component
    if uid[1]:
        out[uid[0]] = uid[1]
    return out


def child_name(base: str, suffix: str, limit: int = 63) -> str:
    """``<base>-<suffix>``, shortened with a stable hash when it would exceed ``limit``."""
    name = f"{base}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{base[:keep].rstrip('-')}-{digest}-{suffix}"


def stable_hash(doc: Any) -> str:
    """A short hash of a JSON document (to roll pods when what they read at start changes)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_subset(desired: Any, observed: Any) -> bool:
    """True when every field of ``desired`` is present and equal in ``observed``.

    The server adds defaults, so observed objects are supersets of what we applied; lists must
    have the same length and match element by element.
    """
    if isinstance(desired, dict):
        if not isinstance(observed, dict):
            return False
        return all(k in observed and is_subset(v, observed[k]) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(observed, list) or len(desired) != len(observed):
            return False
        return all(is_subset(d, o) for d, o in zip(desired, observed, strict=True))
    if isinstance(desired, (int, float)) and isinstance(observed, (int, float)):
        return desired == observed
    return bool(desired == observed) or (str(desired) == str(observed) and desired is not None)
