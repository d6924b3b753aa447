"""Check YAML snippets of the docs with what reads them for real: our pydantic models (custom
resources), the admin policy model, the chart's values schema (through helm), kind's config
fields, or the API server (built-in kinds, dry-run)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from model_garden.api import FineTuneJob, InferenceDeployment, ModelVersion
from model_garden.operator.policy import AdminPolicy

from .extract import REPO

MODELS = {"FineTuneJob": FineTuneJob, "InferenceDeployment": InferenceDeployment,
          "ModelVersion": ModelVersion}  # fmt: skip
CHART = REPO / "charts" / "model-garden"

# kind's v1alpha4 config (sigs.k8s.io/kind/pkg/apis/config/v1alpha4/types.go): the fields a
# misspelling would silently drop, since kind ignores unknown fields only with a warning.
KIND_CLUSTER = {"kind", "apiVersion", "name", "nodes", "networking", "featureGates",
                "runtimeConfig", "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902",
                "containerdConfigPatches", "containerdConfigPatchesJSON6902"}  # fmt: skip
KIND_NODE = {"role", "image", "labels", "extraMounts", "extraPortMappings",
             "kubeadmConfigPatches", "kubeadmConfigPatchesJSON6902"}  # fmt: skip
KIND_MOUNT = {"hostPath", "containerPath", "readOnly", "selinuxRelabel", "propagation"}


def check_kind_cluster(doc: dict[str, Any]) -> str:
    """A kind v1alpha4 Cluster: known fields only, roles and mounts complete; returns its name."""
    assert doc.get("apiVersion") == "kind.x-k8s.io/v1alpha4", doc.get("apiVersion")
    assert set(doc) <= KIND_CLUSTER, f"unknown kind Cluster fields: {set(doc) - KIND_CLUSTER}"
    nodes = doc.get("nodes") or []
    assert nodes, "a kind Cluster with no nodes"
    assert sum(n.get("role") == "control-plane" for n in nodes) >= 1
    for node in nodes:
        assert set(node) <= KIND_NODE, f"unknown node fields: {set(node) - KIND_NODE}"
        assert node.get("role") in {"control-plane", "worker"}, node.get("role")
        for mount in node.get("extraMounts", []):
            assert set(mount) <= KIND_MOUNT, f"unknown mount fields: {set(mount) - KIND_MOUNT}"
            assert str(mount["hostPath"]).startswith("/"), mount
            assert str(mount["containerPath"]).startswith("/"), mount
    return str(doc["name"])


def check_values(text: str, helm: Path, tmp: Path) -> None:
    """A values snippet renders with the chart (its values.schema.json refuses unknown keys)."""
    path = tmp / "values-snippet.yaml"
    path.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [str(helm), "template", "mg", str(CHART), "-n", "model-garden-system", "-f", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"helm template -f snippet failed:\n{proc.stderr}"


def values_keys() -> set[str]:
    return set(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8")))


def policy_keys() -> set[str]:
    return {f.alias or name for name, f in AdminPolicy.model_fields.items()}


def check_document(doc: dict[str, Any], text: str, helm: Path, tmp: Path) -> str:
    """Validate one YAML document; returns what it was checked as."""
    kind = doc.get("kind")
    if kind in MODELS:
        MODELS[kind].model_validate(doc)
        return f"{kind} (pydantic model)"
    if kind == "Cluster":
        check_kind_cluster(doc)
        return "kind Cluster"
    if kind == "ConfigMap" and "policy.yaml" in (doc.get("data") or {}):
        AdminPolicy.model_validate(yaml.safe_load(doc["data"]["policy.yaml"]))
        return "policy ConfigMap (AdminPolicy)"
    if kind is None and set(doc) <= policy_keys():
        AdminPolicy.model_validate(doc)
        return "policy.yaml (AdminPolicy)"
    if kind is None and set(doc) <= values_keys():
        check_values(text, helm, tmp)
        return "chart values (helm template, values.schema.json)"
    raise AssertionError(f"no validator for this YAML snippet (kind {kind!r}, keys {sorted(doc)})")
