"""Render the chart with the real helm binary ($MODEL_GARDEN_KUBE_TOOLS/helm, scripts/bootstrap.sh)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.tools import tool

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "model-garden"
RELEASE = "mg"
NAMESPACE = "model-garden-system"
PROMETHEUS_OPERATOR_API = "monitoring.coreos.com/v1"


def helm_binary() -> Path:
    """Helm 4, from the tools scripts/fetch-kube-tools.sh installs."""
    return tool("MODEL_GARDEN_KUBE_TOOLS", "scripts/fetch-kube-tools.sh", inside="helm")


def helm3_binary() -> Path:
    """Helm 3 (scripts/fetch-helm3.sh): the chart must work with both major versions."""
    return tool("MODEL_GARDEN_HELM3", "scripts/fetch-helm3.sh")


def helm(*args: str, binary: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run helm (4, unless ``binary`` names another)."""
    return subprocess.run(
        [str(binary or helm_binary()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass(frozen=True)
class ValueSet:
    """One way to install the chart: value files, --set flags and the APIs the cluster serves."""

    name: str
    files: tuple[str, ...] = ()
    api_versions: tuple[str, ...] = (PROMETHEUS_OPERATOR_API,)
    sets: tuple[str, ...] = field(default=())

    def value_args(self) -> list[str]:
        """Value files and --set flags (what `helm lint` takes)."""
        out: list[str] = []
        for f in self.files:
            out += ["-f", str(CHART / f)]
        for s in self.sets:
            out += ["--set", s]
        return out

    def args(self) -> list[str]:
        """Value flags plus the APIs the cluster serves (what `helm template` takes)."""
        out = self.value_args()
        for api in self.api_versions:
            out += ["--api-versions", api]
        return out


VALUE_SETS = [
    ValueSet("default"),
    ValueSet("cpu-profile", ("values-cpu.yaml",)),
    ValueSet("gpu-kueue", ("ci/gpu-kueue-values.yaml",)),
    ValueSet("namespaced", ("ci/namespaced-values.yaml",)),
    ValueSet("monitoring-off", ("ci/monitoring-off-values.yaml",), api_versions=()),
]


def template(values: ValueSet, namespace: str = NAMESPACE, binary: Path | None = None) -> str:
    """`helm template` output (hooks included: the `helm test` pod); fails with helm's stderr."""
    proc = helm("template", RELEASE, str(CHART), "-n", namespace, *values.args(), binary=binary)
    if proc.returncode != 0:
        raise AssertionError(f"helm template ({values.name}) failed:\n{proc.stderr}")
    return proc.stdout


def render(values: ValueSet, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """`helm template`, parsed."""
    return [doc for doc in yaml.safe_load_all(template(values, namespace)) if doc]


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]
