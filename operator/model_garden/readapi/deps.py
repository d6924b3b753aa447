"""Typed dependencies of the routes: the source, the settings, the caller."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from .settings import ReadApiSettings
from .source import ApiError, Caller, Source


def get_source(request: Request) -> Source:
    source: Source = request.app.state.source
    return source


def get_settings(request: Request) -> ReadApiSettings:
    settings: ReadApiSettings = request.app.state.settings
    return settings


def get_caller(authorization: Annotated[str | None, Header()] = None) -> Caller:
    if not authorization:
        return Caller(None)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Authorization must be 'Bearer <token>'")
    return Caller(token.strip())


SourceDep = Annotated[Source, Depends(get_source)]
SettingsDep = Annotated[ReadApiSettings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]


def must_get(
    source: Source, kind: str, namespace: str, name: str, caller: Caller
) -> dict[str, Any]:
    obj = source.get(kind, namespace, name, caller)
    if obj is None:
        raise ApiError(404, f"{kind} {namespace}/{name} not found")
    return obj
