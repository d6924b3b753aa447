"""InferenceDeployments: list, get, history, create, scale, delete, and the chat proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from model_garden.api import InferenceDeployment

from .. import history, models
from ..deps import CallerDep, SettingsDep, SourceDep, must_get
from ..source import ApiError
from .resources import ListQueryDep, manifest_errors, must_parse, page

KIND = "InferenceDeployment"
router = APIRouter(prefix="/inferencedeployments", tags=["inferencedeployments"])


@router.get("", response_model=models.DeploymentList)
def list_deployments(source: SourceDep, caller: CallerDep, query: ListQueryDep) -> dict[str, Any]:
    return page(source, KIND, InferenceDeployment, caller, query)


@router.get("/{namespace}/{name}", response_model=InferenceDeployment)
def get_deployment(
    source: SourceDep, caller: CallerDep, namespace: str, name: str
) -> InferenceDeployment:
    return must_parse(InferenceDeployment, must_get(source, KIND, namespace, name, caller))


@router.get("/{namespace}/{name}/history", response_model=models.DeploymentHistory)
def deployment_history(
    source: SourceDep, settings: SettingsDep, caller: CallerDep, namespace: str, name: str
) -> models.DeploymentHistory:
    idep = must_get(source, KIND, namespace, name, caller)
    if settings.prometheus_url:
        points = history.prometheus_deployment(settings.prometheus_url, idep)
        return models.DeploymentHistory(points=points, source="prometheus")
    lines = history.read_jsonl(source.meter_history_files(idep, caller))
    return models.DeploymentHistory(points=history.serving_points(lines), source="history")


@router.post("", response_model=InferenceDeployment, status_code=201)
def create_deployment(
    source: SourceDep, caller: CallerDep, body: models.NewDeployment
) -> InferenceDeployment:
    """Serve a ModelVersion (with adapters: ModelVersion names served as LoRA adapters)."""
    must_get(source, "ModelVersion", body.namespace, body.version, caller)
    manifest: dict[str, Any] = {
        "apiVersion": "modelgarden.dev/v1alpha1",
        "kind": KIND,
        "metadata": {"name": body.name, "namespace": body.namespace},
        "spec": {
            "modelVersion": body.version,
            "replicas": body.replicas,
            "adapters": [{"name": a, "modelVersion": a} for a in body.adapters],
        },
    }
    try:
        InferenceDeployment.model_validate(manifest)
    except ValidationError as exc:
        raise ApiError(422, manifest_errors(exc)) from exc
    return must_parse(InferenceDeployment, source.create(manifest, caller))


@router.patch("/{namespace}/{name}/scale", response_model=InferenceDeployment)
def scale(
    source: SourceDep, caller: CallerDep, namespace: str, name: str, body: models.Scale
) -> InferenceDeployment:
    return must_parse(InferenceDeployment, source.scale(namespace, name, body.replicas, caller))


@router.delete("/{namespace}/{name}", status_code=204, response_class=Response)
def delete(source: SourceDep, caller: CallerDep, namespace: str, name: str) -> Response:
    source.delete(KIND, namespace, name, caller)
    return Response(status_code=204)


HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
}


@router.post("/{namespace}/{name}/chat/completions", response_model=None)
async def chat(
    request: Request,
    source: SourceDep,
    settings: SettingsDep,
    caller: CallerDep,
    namespace: str,
    name: str,
) -> StreamingResponse:
    """The OpenAI chat body, forwarded to the deployment's endpoint; a streamed answer
    (``stream: true``) comes back as the server's text/event-stream, unchanged."""
    idep = must_get(source, KIND, namespace, name, caller)
    endpoint = (idep.get("status") or {}).get("endpoint")
    if not endpoint:
        raise ApiError(409, f"{KIND} {namespace}/{name} has no endpoint yet (not Ready)")
    client = httpx.AsyncClient(timeout=httpx.Timeout(settings.chat_timeout_seconds, connect=5.0))
    upstream = client.build_request(
        "POST",
        f"{str(endpoint).rstrip('/')}/chat/completions",
        content=await request.body(),
        headers={"content-type": request.headers.get("content-type", "application/json")},
    )
    try:
        reply = await client.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        await client.aclose()
        raise ApiError(502, f"the deployment's endpoint did not answer: {exc}") from exc

    async def body() -> AsyncIterator[bytes]:
        async for chunk in reply.aiter_bytes():
            yield chunk

    async def close() -> None:
        await reply.aclose()
        await client.aclose()

    headers = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_HEADERS}
    return StreamingResponse(
        body(), status_code=reply.status_code, headers=headers, background=BackgroundTask(close)
    )
