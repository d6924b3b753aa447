"""Shared list/get plumbing of the three kinds' routers."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ValidationError

from ..query import paginate, select
from ..source import ApiError, Caller, Source

M = TypeVar("M", bound=BaseModel)


_PARSED: dict[tuple[Any, ...], Any] = {}
_PARSED_MAX = 50_000


def parse(model: type[M], body: dict[str, Any]) -> M | None:
    """The object as its model (None: it does not match the schema), parsed once per
    resourceVersion: a list page re-served from the cache costs no validation."""
    meta = body.get("metadata") or {}
    rv = meta.get("resourceVersion")
    key = (model, meta.get("namespace"), meta.get("name"), meta.get("uid"), rv)
    if rv is not None and key in _PARSED:
        cached: M | None = _PARSED[key]
        return cached
    try:
        parsed: M | None = model.model_validate(body)
    except ValidationError:
        parsed = None
    if rv is not None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = parsed
    return parsed


def must_parse(model: type[M], body: dict[str, Any]) -> M:
    parsed = parse(model, body)
    if parsed is None:
        name = (body.get("metadata") or {}).get("name")
        raise ApiError(500, f"{body.get('kind')} {name} in the source does not match its schema")
    return parsed


class ListQuery:
    """The query of every list route: the filters, and a page (``limit``, ``continue``)."""

    def __init__(
        self,
        namespace: str | None = None,
        model: str | None = None,
        experiment: str | None = None,
        condition: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        continue_: Annotated[str | None, Query(alias="continue")] = None,
    ) -> None:
        self.namespace, self.limit, self.continue_ = namespace, limit, continue_
        self.filters = {"model": model, "experiment": experiment, "condition": condition}


ListQueryDep = Annotated[ListQuery, Depends()]


def page(
    source: Source,
    kind: str,
    schema: type[M],
    caller: Caller,
    query: ListQuery,
    **more: str | None,
) -> dict[str, Any]:
    """One page of a filtered list, as ``{items, continue, total}`` (``more``: filters of one
    kind, e.g. a version's stage)."""
    namespace = query.namespace
    items = select(
        source.items(kind, caller, namespace), namespace=namespace, **query.filters, **more
    )
    chunk, token = paginate(items, query.limit, query.continue_)
    parsed = [p for p in (parse(schema, body) for body in chunk) if p is not None]
    return {"items": parsed, "continue": token, "total": len(items)}


def manifest_errors(exc: ValidationError) -> dict[str, Any]:
    """A pydantic error as the contract's validation detail (field paths in camelCase)."""
    from pydantic.alias_generators import to_camel

    errors = []
    for err in exc.errors():
        path = ".".join(to_camel(str(p)) if isinstance(p, str) else str(p) for p in err["loc"])
        errors.append({"field": path or None, "line": None, "message": err["msg"]})
    return {"message": "the manifest is invalid", "errors": errors}
