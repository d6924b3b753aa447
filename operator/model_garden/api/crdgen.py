"""Generate CustomResourceDefinitions from the pydantic models (the models are the source of truth).

Pydantic's JSON Schema is turned into a Kubernetes *structural* schema: references inlined,
optional fields un-wrapped from ``anyOf [X, null]``, titles and ``additionalProperties: false``
dropped (the API server prunes unknown fields instead), defaults kept so the API server fills
them in, CEL rules (``x-kubernetes-validations``) kept where the models declare them.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from .common import GROUP, VERSION
from .registry import CATEGORY, KINDS, Kind

_DROP = {"title", "additionalProperties", "$defs"}
_KEEP_FROM_WRAPPER = ("description", "default", "enum", "x-kubernetes-validations", "format")


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        target = copy.deepcopy(defs[name])
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        target.update(rest)
        return _resolve(target, defs)
    if "allOf" in schema and len(schema["allOf"]) == 1:
        inner = _resolve(schema["allOf"][0], defs)
        inner.update({k: v for k, v in schema.items() if k != "allOf"})
        return _resolve(inner, defs)
    if "anyOf" in schema:
        options = [o for o in schema["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            inner = _resolve(options[0], defs)
            for key in _KEEP_FROM_WRAPPER:
                if key in schema and key != "default":
                    inner[key] = schema[key]
            if schema.get("default") is not None:
                inner["default"] = schema["default"]
            return inner
        # int | float and the like: a number covers them.
        if {o.get("type") for o in options} <= {"integer", "number"}:
            return {"type": "number", **{k: schema[k] for k in ("description",) if k in schema}}
        raise ValueError(f"cannot express anyOf {schema['anyOf']} structurally")
    return schema


def _structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    schema = _resolve(schema, defs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "properties":
            out["properties"] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out["items"] = _structural(value, defs)
        elif key == "default" and value is None:
            continue
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(schema["additionalProperties"], defs)
    if "properties" in out:
        out.setdefault("type", "object")
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _defaults_for_nested_models(model: type[BaseModel], schema: dict[str, Any]) -> None:
    """Give fields whose default is a model (default_factory) ``default: {}`` so nested defaults apply."""
    for name, info in model.model_fields.items():
        alias = info.alias or name
        prop = schema.get("properties", {}).get(alias)
        if prop is None:
            continue
        annotation = info.annotation
        sub_models = [
            a
            for a in getattr(annotation, "__args__", (annotation,))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if info.default_factory is not None and "default" not in prop:
            value = info.get_default(call_default_factory=True)
            if isinstance(value, BaseModel):
                prop["default"] = {}
            elif isinstance(value, list | dict) and value:
                prop["default"] = value
        for sub in sub_models:
            _defaults_for_nested_models(sub, prop)
        item_models = [
            a
            for a in getattr(annotation, "__args__", ())
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if prop.get("type") == "array" and item_models and "items" in prop:
            _defaults_for_nested_models(item_models[0], prop["items"])


def _without_defaults(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_defaults(v) for k, v in schema.items() if k != "default"}
    if isinstance(schema, list):
        return [_without_defaults(v) for v in schema]
    return schema


def schema_for(kind: Kind) -> dict[str, Any]:
    """The openAPIV3Schema of one kind."""
    raw = kind.model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    props = raw["properties"]
    spec = _structural(props["spec"], defs)
    status = _structural(props["status"], defs)
    spec_model = kind.model.model_fields["spec"].annotation
    status_model = kind.model.model_fields["status"].annotation
    assert isinstance(spec_model, type) and isinstance(status_model, type)
    _defaults_for_nested_models(spec_model, spec)
    status = _without_defaults(status)  # status is written by controllers, never defaulted
    # The API server lets a CRD constrain metadata.name (and nothing else in metadata): the
    # name rules of the kind's metadata model, so a name its children would refuse is refused.
    name = _structural(_resolve(props["metadata"], defs)["properties"]["name"], defs)
    root: dict[str, Any] = {
        "type": "object",
        "description": (kind.model.__doc__ or "").strip(),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "properties": {"name": name}},
            "spec": spec,
            "status": status,
        },
    }
    if "x-kubernetes-validations" in raw:
        root["x-kubernetes-validations"] = raw["x-kubernetes-validations"]
    return root


def crd_for(kind: Kind) -> dict[str, Any]:
    """The full CustomResourceDefinition of one kind."""
    subresources: dict[str, Any] = {"status": {}}
    if kind.scale:
        subresources["scale"] = dict(kind.scale)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema_for(kind)},
                    "subresources": subresources,
                    "additionalPrinterColumns": [dict(c) for c in kind.columns],
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd_for(k) for k in KINDS]


def strip_cel(obj: Any) -> Any:
    """A copy without ``x-kubernetes-validations`` (for API servers older than 1.25)."""
    if isinstance(obj, dict):
        return {k: strip_cel(v) for k, v in obj.items() if k != "x-kubernetes-validations"}
    if isinstance(obj, list):
        return [strip_cel(v) for v in obj]
    return obj


def cel_rules(obj: Any, path: str = "") -> list[tuple[str, dict[str, str]]]:
    """Every CEL rule in a schema with the JSON path of the node it sits on ('' = root)."""
    found: list[tuple[str, dict[str, str]]] = []
    if isinstance(obj, dict):
        for rule in obj.get("x-kubernetes-validations", []):
            found.append((path, rule))
        for name, sub in obj.get("properties", {}).items():
            found.extend(cel_rules(sub, f"{path}.{name}" if path else name))
        if "items" in obj:
            found.extend(cel_rules(obj["items"], f"{path}[]"))
    return found
