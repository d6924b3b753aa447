"""Local mode's executor: a planner's Plan applied to the store instead of the API server.

The same semantics as :class:`model_garden.operator.executor.Executor`: creates are made once
(an existing object of that name is success, unless a ModelVersion of that name came from
another job: then the planner picks again next pass), applies replace the desired fields,
merge patches merge, deletes of missing objects succeed, then the owner's status and events.
"""

from __future__ import annotations

from typing import Any

from model_garden.api.labels import LABEL_FTJ_UID
from model_garden.operator.plan import Plan

from .store import AlreadyExists, LocalStore


def execute(store: LocalStore, plan: Plan, owner: dict[str, Any]) -> None:
    with store.lock():
        for obj in plan.create:
            try:
                store.create(obj)
            except AlreadyExists:
                if obj["kind"] == "ModelVersion" and not _same_job(store, obj):
                    return  # another job's version of that name: replan next pass
                continue
            plan.created.add(obj["metadata"]["name"])
        for obj in plan.apply:
            store.put(obj)
        for ref, patch in plan.patch:
            store.patch(ref.kind, ref.name, patch)
        for ref in plan.delete:
            store.delete(ref.kind, ref.name)  # its pods go with the garbage collector
        kind, name = owner["kind"], owner["metadata"]["name"]
        if plan.status:
            store.patch(kind, name, {"status": plan.status})
        for event in plan.events:
            if event.if_created is not None and event.if_created not in plan.created:
                continue
            store.add_event(kind, name, event.type, event.reason, event.message)


def _same_job(store: LocalStore, obj: dict[str, Any]) -> bool:
    existing = store.get(obj["kind"], obj["metadata"]["name"]) or {}
    want = (obj["metadata"].get("labels") or {}).get(LABEL_FTJ_UID)
    have = ((existing.get("metadata") or {}).get("labels") or {}).get(LABEL_FTJ_UID)
    return not want or want == have
