"""Filters and pagination over the objects as the API server holds them (plain dicts)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from typing import Any

from model_garden.api.labels import LABEL_EXPERIMENT

from .source import ApiError

MAX_LIMIT = 500


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = obj.get("metadata") or {}
    return m


def spec(obj: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = obj.get("spec") or {}
    return s


def status(obj: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = obj.get("status") or {}
    return s


def key(obj: dict[str, Any]) -> tuple[str, str]:
    m = meta(obj)
    return str(m.get("namespace") or ""), str(m.get("name") or "")


def model_of_version_name(version: str) -> str:
    model, sep, _ = version.rpartition("-v")
    return model if sep else version


def model_of(obj: dict[str, Any]) -> str | None:
    """The model a FineTuneJob makes, a ModelVersion is of, an InferenceDeployment serves."""
    kind, s = obj.get("kind"), spec(obj)
    if kind == "FineTuneJob":
        return str((s.get("output") or {}).get("model") or meta(obj).get("name"))
    if kind == "ModelVersion":
        return str(s.get("model")) if s.get("model") else None
    if s.get("model"):
        return str(s["model"])
    version = status(obj).get("modelVersion") or s.get("modelVersion")
    return model_of_version_name(str(version)) if version else None


def condition_true(obj: dict[str, Any], type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True"
        for c in status(obj).get("conditions") or []
    )


def experiment_of(obj: dict[str, Any]) -> str | None:
    value = (meta(obj).get("labels") or {}).get(LABEL_EXPERIMENT)
    return str(value) if value else None


def select(
    items: Iterable[dict[str, Any]],
    *,
    namespace: str | None = None,
    model: str | None = None,
    experiment: str | None = None,
    condition: str | None = None,
    stage: str | None = None,
) -> list[dict[str, Any]]:
    """The items matching every filter given, sorted by namespace and name."""
    out = []
    for obj in items:
        if namespace and meta(obj).get("namespace") != namespace:
            continue
        if model and model_of(obj) != model:
            continue
        if experiment and experiment_of(obj) != experiment:
            continue
        if condition and not condition_true(obj, condition):
            continue
        if stage and (spec(obj).get("stage") or "none") != stage:
            continue
        out.append(obj)
    return sorted(out, key=key)


def encode_continue(last: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(last)).encode()).decode().rstrip("=")


def decode_continue(token: str) -> tuple[str, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        ns, name = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return str(ns), str(name)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ApiError(400, "continue: not a token this API handed out") from exc


def paginate(
    items: list[dict[str, Any]], limit: int, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of ``items`` (sorted by key) after the token's key; the next token or None.

    The token names the last key served, not an offset, so an object created or deleted between
    two pages neither repeats nor hides another one."""
    if limit < 1 or limit > MAX_LIMIT:
        raise ApiError(400, f"limit: between 1 and {MAX_LIMIT}")
    start = 0
    if token:
        after = decode_continue(token)
        start = next((i for i, obj in enumerate(items) if key(obj) > after), len(items))
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, encode_continue(key(page[-1])) if more and page else None
