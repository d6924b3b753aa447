"""The multi-node training engines' CRDs (vendored next to the others, verbatim):

| File | Kind | Project, version | Source |
|---|---|---|---|
| `trainer.kubeflow.org_trainjobs.yaml` | TrainJob `trainer.kubeflow.org/v1alpha1` | Kubeflow Trainer v2.3.0 (commit 658725bdae5c7e3a0854d93ac6ff492e109a22ab) | https://github.com/kubeflow/trainer/blob/v2.3.0/manifests/base/crds/trainer.kubeflow.org_trainjobs.yaml |
| `jobset.x-k8s.io_jobsets.yaml` | JobSet `jobset.x-k8s.io/v1alpha2` | JobSet v0.12.0 (commit f22e565ac3cc3265c7c45ef67ecffdc689af5d77) | https://github.com/kubernetes-sigs/jobset/blob/v0.12.0/config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml |

Validation is :mod:`crd_schemas.vendored`'s (jsonschema on the openAPIV3Schema, undeclared
fields refused) on these files; :func:`for_envtest` gives them to the 1.20 envtest API server
(tests/envtest/test_multinode_apiserver.py). To update: copy the files at the new tag, change
the table, run ``pytest tests/unit/operator/test_multinode.py
tests/envtest/test_multinode_apiserver.py``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import yaml

from crd_schemas.vendored import HERE, _closed

FILES = {
    ("trainer.kubeflow.org", "TrainJob"): "trainer.kubeflow.org_trainjobs.yaml",
    ("jobset.x-k8s.io", "JobSet"): "jobset.x-k8s.io_jobsets.yaml",
}


@cache
def _validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    group, version = api_version.split("/")
    crd = yaml.safe_load((HERE / FILES[(group, kind)]).read_text("utf-8"))
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version and entry.get("served", True):
            return jsonschema.Draft7Validator(_closed(entry["schema"]["openAPIV3Schema"]))
    raise KeyError(f"{api_version} {kind} is not served by the vendored CRD")


def validate(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when ``obj`` does not fit its vendored CRD."""
    _validator(obj["apiVersion"], obj["kind"]).validate(obj)


def _for_1_20(node: Any) -> Any:
    """What a 1.20 API server accepts: no CEL rules (it has no CEL and refuses the field), no
    ``default: ""`` (it reads it as null and refuses it), and a list-map key that lost such a
    default made required instead (a list-map key needs a default or to be required)."""
    if isinstance(node, dict):
        out = {
            k: _for_1_20(v)
            for k, v in node.items()
            if k != "x-kubernetes-validations" and not (k == "default" and v == "")
        }
        items = node.get("items")
        if isinstance(items, dict) and node.get("x-kubernetes-list-map-keys"):
            props = items.get("properties") or {}
            lost = [
                key
                for key in node["x-kubernetes-list-map-keys"]
                if (props.get(key) or {}).get("default") == ""
            ]
            if lost:
                required = out["items"].setdefault("required", [])
                required.extend(key for key in lost if key not in required)
        return out
    if isinstance(node, list):
        return [_for_1_20(v) for v in node]
    return node


def for_envtest(group: str, kind: str) -> dict[str, Any]:
    """The CRD as the envtest API server (1.20) accepts it; its metadata keeps the name and the
    annotations (a ``*.k8s.io`` group, like JobSet's, needs its api-approved annotation)."""
    body: dict[str, Any] = _for_1_20(yaml.safe_load((HERE / FILES[(group, kind)]).read_text()))
    meta = body["metadata"]
    body["metadata"] = {"name": meta["name"], "annotations": meta.get("annotations") or {}}
    body.pop("status", None)
    return body
