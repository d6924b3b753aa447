"""Validate rendered objects against the vendored CRDs' openAPIV3Schema (what the API server
of a cluster with those CRDs would check), and give those CRDs to the envtest API server.

Kubernetes prunes fields a structural schema does not declare; here an undeclared field is an
error instead (``additionalProperties: false`` on every object that declares properties and
does not preserve unknown fields), so a misspelt field fails the test rather than vanishing.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
FILES = {
    ("keda.sh", "ScaledObject"): "keda.sh_scaledobjects.yaml",
    ("http.keda.sh", "HTTPScaledObject"): "http.keda.sh_httpscaledobjects.yaml",
    ("gateway.networking.k8s.io", "HTTPRoute"): "gateway.networking.k8s.io_httproutes.yaml",
}


@cache
def crd(group: str, kind: str) -> dict[str, Any]:
    """The vendored CustomResourceDefinition of ``kind``."""
    doc: dict[str, Any] = yaml.safe_load((HERE / FILES[(group, kind)]).read_text("utf-8"))
    return doc


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


def schema(api_version: str, kind: str) -> dict[str, Any]:
    group, version = api_version.split("/")
    for entry in crd(group, kind)["spec"]["versions"]:
        if entry["name"] == version and entry.get("served", True):
            closed: dict[str, Any] = _closed(entry["schema"]["openAPIV3Schema"])
            return closed
    raise KeyError(f"{api_version} {kind} is not served by the vendored CRD")


def validate(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when ``obj`` does not fit its vendored CRD."""
    jsonschema.Draft7Validator(schema(obj["apiVersion"], obj["kind"])).validate(obj)


# --- for the envtest API server (Kubernetes 1.20) -----------------------------------------------


def _for_1_20(node: Any) -> Any:
    """Without CEL rules (1.20 has no CEL and refuses the field) and without empty-string
    defaults (1.20's default validation reads ``default: ""`` as null and refuses it)."""
    if isinstance(node, dict):
        return {
            k: _for_1_20(v)
            for k, v in node.items()
            if k != "x-kubernetes-validations" and not (k == "default" and v == "")
        }
    if isinstance(node, list):
        return [_for_1_20(v) for v in node]
    return node


def for_envtest(group: str, kind: str) -> dict[str, Any]:
    """The CRD as a 1.20 API server accepts it (see ``_for_1_20``); its metadata keeps the
    name and annotations (a ``*.k8s.io`` group needs its api-approved annotation)."""
    body: dict[str, Any] = _for_1_20(copy.deepcopy(crd(group, kind)))
    meta = body["metadata"]
    body["metadata"] = {"name": meta["name"], "annotations": meta.get("annotations") or {}}
    body.pop("status", None)
    return body
