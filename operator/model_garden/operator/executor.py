"""The one module that talks to the API server: it executes plans and lists what planners need.

Creates treat AlreadyExists as success only when the object there is ours (controlled by the
same owner uid; a ModelVersion: carrying the job's uid label), deletes treat NotFound as
success, and ``apply`` is server-side apply with our field manager, so executing the same plan
twice changes nothing. The executor never adopts or overwrites an object it does not own: an
object of the planned name controlled by someone else, or a field another manager owns, raises
:class:`NotOurs` naming the object, before anything of the plan is applied, and the handler
turns it into a ``Conflict`` condition. Every call is bounded in time (``timeout``).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from model_garden.api.labels import (
    API_VERSION,
    FIELD_MANAGER,
    FINETUNEJOBS,
    INFERENCEDEPLOYMENTS,
    LABEL_FTJ_UID,
    MODELVERSIONS,
)

from .plan import ObjectRef, Plan

log = logging.getLogger(__name__)

# apiVersion/kind -> plural (every kind the operator touches; ours named in api/labels.py).
PLURALS = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("v1", "Pod"): "pods",
    ("v1", "Event"): "events",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("batch/v1", "Job"): "jobs",
    ("apps/v1", "Deployment"): "deployments",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    # InferenceDeployment autoscalers and routes (the version discovery found served).
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobjects",
    ("http.keda.sh/v1alpha1", "HTTPScaledObject"): "httpscaledobjects",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproutes",
    ("gateway.networking.k8s.io/v1beta1", "HTTPRoute"): "httproutes",
    # Multi-node FineTuneJobs (finetunejob/workload.py).
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): "trainjobs",
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): "jobsets",
    (API_VERSION, "FineTuneJob"): FINETUNEJOBS,
    (API_VERSION, "ModelVersion"): MODELVERSIONS,
    (API_VERSION, "InferenceDeployment"): INFERENCEDEPLOYMENTS,
}


DEFAULT_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds per request: settings.api_connect/read_timeout_seconds."""
CONNECT_RETRIES = 2
"""Connection failures are retried this often; a read never is (a call is then bounded by
``(1 + CONNECT_RETRIES) * connect + read``; kopf retries the handler)."""


class VersionConflict(RuntimeError):
    """A ModelVersion of the planned name exists and belongs to someone else; replan."""


class NotOurs(RuntimeError):
    """An object the plan writes exists and is not ours: nothing of the plan was applied.

    ``ref`` names it, ``detail`` says why (another controller, no owner, or a field another
    field manager owns); ``message`` is the sentence for the owner's ``Conflict`` condition.
    The plan is retried at the next reconcile, so the conflict clears once a person deletes or
    renames the object.
    """

    reason = "Conflict"

    def __init__(self, ref: ObjectRef, detail: str) -> None:
        self.ref = ref
        self.detail = detail
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return (
            f"{self.ref.kind} {self.ref.namespace}/{self.ref.name} already exists and is not "
            f"ours ({self.detail}); the operator leaves it untouched: delete or rename it"
        )


class ApiTimeout(TimeoutError):
    """The API server did not answer within the executor's bound."""


def _bounded(api_client: ApiClient) -> ApiClient:
    """Our own client on a copy of the configuration: the same identity (and token refresh
    hook), with retries that never repeat a read (so the timeout bounds every call)."""
    configuration = copy.deepcopy(api_client.configuration)
    configuration.retries = urllib3.Retry(
        total=CONNECT_RETRIES, connect=CONNECT_RETRIES, read=0, status=0, redirect=0, other=0
    )
    return ApiClient(configuration)


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The uid of the object's controller ownerReference, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or "") or None
    return None


def describe_controller(obj: dict[str, Any]) -> str:
    """Who controls ``obj``, for a conflict message."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"controlled by {ref.get('kind')} {ref.get('name')} (uid {ref.get('uid')})"
    return "it has no controller"


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    plural = PLURALS[(api_version, kind)]
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


def object_path(ref: ObjectRef) -> str:
    return f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"


SENT_STATUS_MAX = 20_000
"""Objects whose last status patch is remembered (≈ 1 KiB each); the least recent go first."""


class SentStatus:
    """The last status patch sent per object, with the resourceVersion it was planned from.

    kopf's view of a resource lags the operator's own writes by an event or two, so a plan made
    again from the same (older) body repeats the patch just sent: the same change to the same
    state, which the API server would store as a new resourceVersion that changes nothing (and
    wake every watcher). Such a repeat is skipped. A plan from any other resourceVersion (a
    newer body, or status someone else changed) is sent as usual.
    """

    def __init__(self) -> None:
        self._sent: dict[ObjectRef, tuple[str | None, str]] = {}
        self._lock = threading.Lock()
        self.skipped = 0

    def repeats(self, ref: ObjectRef, base: str | None, status: dict[str, Any]) -> bool:
        if base is None:
            return False
        with self._lock:
            repeat = self._sent.get(ref) == (base, _canonical(status))
            self.skipped += repeat
            return repeat

    def record(self, ref: ObjectRef, base: str | None, status: dict[str, Any]) -> None:
        with self._lock:
            self._sent.pop(ref, None)  # re-inserted last: the oldest entries go first
            self._sent[ref] = (base, _canonical(status))
            while len(self._sent) > SENT_STATUS_MAX:
                del self._sent[next(iter(self._sent))]

    def forget(self, ref: ObjectRef) -> None:
        with self._lock:
            self._sent.pop(ref, None)


def _canonical(status: dict[str, Any]) -> str:
    return json.dumps(status, sort_keys=True, separators=(",", ":"), default=str)


class Executor:
    """Executes plans with one ApiClient (the operator's identity)."""

    def __init__(
        self,
        api_client: ApiClient,
        component: str = "model-garden-operator",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        reconnect: Callable[[], ApiClient] | None = None,
    ) -> None:
        """``reconnect`` makes a client from credentials read afresh; on a 401 the executor
        switches to it and repeats the call once (a rotated token)."""
        self.api = _bounded(api_client)
        self.component = component
        self.timeout = timeout
        self._reconnect = reconnect
        self._sent_status = SentStatus()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """One request on any API path (bounded, re-authenticated once on a 401); raises
        ApiException on a non-2xx answer, returns the decoded JSON. The verbs above use it;
        the CLI and the read API use it for paths they have no verb for."""
        try:
            return self._request(method, path, body, query, content_type, accept)
        except ApiException as exc:
            if exc.status != 401 or self._reconnect is None:
                raise
            log.info("API server answered 401; reconnecting with fresh credentials")
            self.api = _bounded(self._reconnect())
            return self._request(method, path, body, query, content_type, accept)

    def _request(
        self,
        method: str,
        path: str,
        body: Any,
        query: list[tuple[str, Any]] | None,
        content_type: str,
        accept: str,
    ) -> Any:
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": accept},
            body=body,
            auth_settings=["BearerToken"],
        )
        verb, url, headers, payload, post = request
        try:
            response = self.api.call_api(
                verb,
                url,
                header_params=headers,
                body=payload,
                post_params=post,
                _request_timeout=self.timeout,
            )
        except urllib3.exceptions.MaxRetryError as exc:
            if isinstance(exc.reason, urllib3.exceptions.TimeoutError):
                raise self._timeout(method, path) from exc
            raise
        except urllib3.exceptions.TimeoutError as exc:
            raise self._timeout(method, path) from exc
        response.read()  # type: ignore[no-untyped-call]
        text = response.data.decode("utf-8") if response.data else ""
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        return json.loads(text) if text else {}

    def _timeout(self, method: str, path: str) -> ApiTimeout:
        connect, read = self.timeout
        return ApiTimeout(
            f"{method} {path}: the API server did not answer within {read:g} s "
            f"(connect bound {connect:g} s)"
        )

    # --- reads --------------------------------------------------------------------------------

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        try:
            return dict(self.call("GET", object_path(ref)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_objects(
        self, api_version: str, kind: str, namespace: str, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        result = self.call("GET", collection_path(api_version, kind, namespace), query=query)
        items: list[dict[str, Any]] = result.get("items") or []
        return items

    # --- writes -------------------------------------------------------------------------------

    def create(self, obj: dict[str, Any]) -> bool:
        """Create ``obj``; False when it already existed and is ours.

        Raises NotOurs when the existing object is not controlled by ``obj``'s controller
        (a ModelVersion: VersionConflict when it lacks this job's uid label).
        """
        ref = ObjectRef.of(obj)
        try:
            self.call("POST", collection_path(ref.api_version, ref.kind, ref.namespace), obj)
        except ApiException as exc:
            if exc.status != 409:
                raise
            if ref.kind == "ModelVersion":
                self._check_ours(ref, obj)
            else:
                self.check_controlled(obj)
            return False
        return True

    def check_controlled(self, obj: dict[str, Any]) -> None:
        """Raise NotOurs when an object of ``obj``'s name exists under another controller.

        Only for objects we create with a controller ownerReference; others are not checked.
        """
        want = controller_uid(obj)
        if want is None:
            return
        ref = ObjectRef.of(obj)
        existing = self.get(ref)
        if existing is not None and controller_uid(existing) != want:
            raise NotOurs(ref, describe_controller(existing))

    def _check_ours(self, ref: ObjectRef, obj: dict[str, Any]) -> None:
        existing = self.get(ref) or {}
        want = (obj["metadata"].get("labels") or {}).get(LABEL_FTJ_UID)
        have = ((existing.get("metadata") or {}).get("labels") or {}).get(LABEL_FTJ_UID)
        if want and have != want:
            raise VersionConflict(
                f"ModelVersion {ref.name} already exists and was not produced by this job"
            )

    def apply(self, obj: dict[str, Any], checked: bool = False) -> None:
        """Server-side apply without force: only to an object that is ours or does not exist.

        ``checked``: the caller already ran check_controlled (execute_children does, for every
        applied object, before writing anything). A field another manager owns makes the API
        server answer 409; that becomes NotOurs naming the fields, never a forced takeover.
        """
        if not checked:
            self.check_controlled(obj)
        ref = ObjectRef.of(obj)
        try:
            self.call(
                "PATCH",
                object_path(ref),
                obj,
                query=[("fieldManager", FIELD_MANAGER)],
                content_type="application/apply-patch+yaml",
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            raise NotOurs(ref, f"fields owned by another field manager: {_message(exc)}") from exc

    def merge_patch(self, ref: ObjectRef, patch: dict[str, Any], subresource: str = "") -> None:
        path = object_path(ref) + (f"/{subresource}" if subresource else "")
        self.call("PATCH", path, patch, content_type="application/merge-patch+json")

    def delete(self, ref: ObjectRef) -> None:
        try:
            self.call(
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
            self.call("POST", collection_path("v1", "Event", owner.namespace), event)
        except ApiException as exc:  # events are best effort; never fail a reconcile on them
            log.warning("cannot post event %s on %s: %s", reason, owner.name, exc.reason)

    def execute(self, plan: Plan, owner: dict[str, Any]) -> None:
        """Creates, applies, patches, deletes, then the owner's status, then events."""
        self.execute_children(plan)
        self.execute_owner(plan, owner)

    def execute_children(self, plan: Plan) -> None:
        """Writes the children; raises NotOurs (before any write when an applied object is
        not ours; creates stop at the first one, in plan order)."""
        for obj in plan.apply:
            self.check_controlled(obj)
        for obj in plan.create:
            if self.create(obj):
                plan.created.add(obj["metadata"]["name"])
        for obj in plan.apply:
            self.apply(obj, checked=True)
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
        base = meta.get("resourceVersion")
        if plan.status and not self._sent_status.repeats(ref, base, plan.status):
            try:
                self.merge_patch(ref, {"status": plan.status}, subresource="status")
                self._sent_status.record(ref, base, plan.status)
            except ApiException as exc:
                self._sent_status.forget(ref)
                if exc.status != 404:  # deleted meanwhile
                    raise
        for event in plan.events:
            if event.if_created is not None and event.if_created not in plan.created:
                continue
            self.post_event(ref, meta.get("uid"), event.type, event.reason, event.message)


def _message(exc: ApiException) -> str:
    """The API server's message from an error body (a Status), else its reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)
