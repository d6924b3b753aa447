"""The one module that talks to the API server: it executes plans and lists what planners need.

Creates treat AlreadyExists as success (after checking a ModelVersion of that name is ours),
deletes treat NotFound as success, and ``apply`` is server-side apply with our field manager,
so executing the same plan twice changes nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from .plan import FIELD_MANAGER, LABEL_FTJ_UID, ObjectRef, Plan

log = logging.getLogger(__name__)

# apiVersion/kind -> plural (every kind the operator touches).
PLURALS = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "Pod"): "pods",
    ("v1", "Event"): "events",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("batch/v1", "Job"): "jobs",
    ("apps/v1", "Deployment"): "deployments",
    ("modelgarden.dev/v1alpha1", "FineTuneJob"): "finetunejobs",
    ("modelgarden.dev/v1alpha1", "ModelVersion"): "modelversions",
    ("modelgarden.dev/v1alpha1", "InferenceDeployment"): "inferencedeployments",
}


class VersionConflict(RuntimeError):
    """A ModelVersion of the planned name exists and belongs to someone else; replan."""


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    plural = PLURALS[(api_version, kind)]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


def object_path(ref: ObjectRef) -> str:
    return f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"


class Executor:
    """Executes plans with one ApiClient (the operator's identity)."""

    def __init__(self, api_client: ApiClient, component: str = "model-garden-operator") -> None:
        self.api = api_client
        self.component = component

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """One request; raises ApiException on a non-2xx answer, returns the decoded JSON."""
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": accept},
            body=body,
            auth_settings=["BearerToken"],
        )
        verb, url, headers, payload, post = request
        response = self.api.call_api(
            verb, url, header_params=headers, body=payload, post_params=post
        )
        response.read()  # type: ignore[no-untyped-call]
        text = response.data.decode("utf-8") if response.data else ""
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        return json.loads(text) if text else {}

    # --- reads --------------------------------------------------------------------------------

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        try:
            return dict(self._call("GET", object_path(ref)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_objects(
        self, api_version: str, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        result = self._call("GET", collection_path(api_version, kind, namespace), query=query)
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    # --- writes -------------------------------------------------------------------------------

    def create(self, obj: dict[str, Any]) -> bool:
        """Create ``obj``; False when it already existed (a ModelVersion must then be ours)."""
        ref = ObjectRef.of(obj)
        try:
            self._call("POST", collection_path(ref.api_version, ref.kind, ref.namespace), obj)
        except ApiException as exc:
            if exc.status != 409:
                raise
            if ref.kind == "ModelVersion":
                self._check_ours(ref, obj)
            return False
        return True

    def _check_ours(self, ref: ObjectRef, obj: dict[str, Any]) -> None:
        existing = self.get(ref) or {}
        want = (obj["metadata"].get("labels") or {}).get(LABEL_FTJ_UID)
        have = ((existing.get("metadata") or {}).get("labels") or {}).get(LABEL_FTJ_UID)
        if want and have != want:
            raise VersionConflict(
                f"ModelVersion {ref.name} already exists and was not produced by this job"
            )

    def apply(self, obj: dict[str, Any]) -> None:
        """Server-side apply, forcing our ownership of the fields we set."""
        self._call(
            "PATCH",
            object_path(ObjectRef.of(obj)),
            obj,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",
        )

    def merge_patch(self, ref: ObjectRef, patch: dict[str, Any], subresource: str = "") -> None:
        path = object_path(ref) + (f"/{subresource}" if subresource else "")
        self._call("PATCH", path, patch, content_type="application/merge-patch+json")

    def delete(self, ref: ObjectRef) -> None:
        try:
            self._call(
                "DELETE",
                object_path(ref),
                {"propagationPolicy": "Background"},
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def post_event(
        self, owner: ObjectRef, uid: str | None, type: str, reason: str, message: str
    ) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{owner.name}.", "namespace": owner.namespace},
            "involvedObject": {
                "apiVersion": owner.api_version,
                "kind": owner.kind,
                "name": owner.name,
                "namespace": owner.namespace,
                "uid": uid,
            },
            "type": type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": self.component,
        }
        try:
            self._call("POST", collection_path("v1", "Event", owner.namespace), event)
        except ApiException as exc:  # events are best effort; never fail a reconcile on them
            log.warning("cannot post event %s on %s: %s", reason, owner.name, exc.reason)

    def execute(self, plan: Plan, owner: dict[str, Any]) -> None:
        """Creates, applies, patches, deletes, then the owner's status, then events."""
        self.execute_children(plan)
        self.execute_owner(plan, owner)

    def execute_children(self, plan: Plan) -> None:
        for obj in plan.create:
            if self.create(obj):
                plan.created.add(obj["metadata"]["name"])
        for obj in plan.apply:
            self.apply(obj)
        for target, patch in plan.patch:
            try:
                self.merge_patch(target, patch)
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise
                log.info(
                    "patch of %s %s skipped (%s); next pass retries",
                    target.kind,
                    target.name,
                    exc.status,
                )
        for target in plan.delete:
            self.delete(target)

    def execute_owner(self, plan: Plan, owner: dict[str, Any]) -> None:
        meta = owner["metadata"]
        ref = ObjectRef(owner["apiVersion"], owner["kind"], meta["namespace"], meta["name"])
        if plan.status:
            try:
                self.merge_patch(ref, {"status": plan.status}, subresource="status")
            except ApiException as exc:
                if exc.status != 404:  # deleted meanwhile
                    raise
        for event in plan.events:
            if event.if_created is not None and event.if_created not in plan.created:
                continue
            self.post_event(ref, meta.get("uid"), event.type, event.reason, event.message)
