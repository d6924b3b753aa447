"""The operator settings the chart renders from gpu.* and monitoring.meterScrapers parse as
the operator parses them (OperatorSettings from the same environment), for every value set."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from model_garden.api.common import Resources
from model_garden.operator.networkpolicy import meter_peers
from model_garden.operator.podspec import scheduling
from model_garden.operator.settings import OperatorSettings

from .render import CHART, VALUE_SETS, ValueSet, helm
from .test_chart_render import RENDERED, _env

pytestmark = pytest.mark.chart

PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> OperatorSettings:
    """OperatorSettings read from exactly the rendered environment (as in the operator's pod)."""
    for name in list(OperatorSettings.model_fields):
        monkeypatch.delenv(f"MODEL_GARDEN_OPERATOR_{name.upper()}", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return OperatorSettings()


def _values(path: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / path).read_text()))


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda v: v.name)
def test_rendered_env_parses_as_operator_settings(
    values: ValueSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(_env(RENDERED[values.name]), monkeypatch)
    gpu = _values("values.yaml")["gpu"]
    nodes = dict(gpu["nodeSelector"])
    tolerations = gpu["tolerations"]
    for f in values.files:  # Helm's merge: maps merge (null deletes a key), lists replace
        over = _values(f).get("gpu") or {}
        nodes.update(over.get("nodeSelector") or {})
        tolerations = over.get("tolerations", tolerations)
    assert settings.gpu_node_selector == {k: v for k, v in nodes.items() if v is not None}
    assert [t.to_wire() for t in settings.gpu_tolerations] == tolerations
    assert settings.metrics_scraper_peers == []  # default: only the operator reaches the meter


def test_gpu_values_become_the_defaults_of_gpu_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _env(RENDERED["gpu-kueue"])
    assert json.loads(env["MODEL_GARDEN_OPERATOR_GPU_NODE_SELECTOR"]) == {
        "nvidia.com/gpu.present": "true",
        "node.kubernetes.io/instance-type": "a100-80gb",
    }
    settings = _settings(env, monkeypatch)
    pod = scheduling(Resources(gpus=1), settings.gpu_node_selector, settings.gpu_tolerations)
    assert pod["nodeSelector"]["node.kubernetes.io/instance-type"] == "a100-80gb"
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # the CPU profile: no GPU nodes, no defaults
    cpu = _env(RENDERED["cpu-profile"])
    assert cpu["MODEL_GARDEN_OPERATOR_GPU_NODE_SELECTOR"] == "{}"
    assert cpu["MODEL_GARDEN_OPERATOR_GPU_TOLERATIONS"] == "[]"


def _operator_pod(*flags: str) -> dict[str, Any]:
    """The operator's pod spec, rendered with these ``helm template`` flags (the chart has a
    second Deployment, the read API's: the operator's is picked by its component)."""
    proc = helm("template", "mg", str(CHART), *flags)
    assert proc.returncode == 0, proc.stderr
    (dep,) = [
        o
        for o in yaml.safe_load_all(proc.stdout)
        if o
        and o["kind"] == "Deployment"
        and o["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    ]
    return dict(dep["spec"]["template"]["spec"])


def _operator_env(*flags: str) -> dict[str, str]:
    """The operator container's environment, rendered with these flags."""
    (container,) = _operator_pod(*flags)["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_meter_scrapers_reach_the_operators_network_policies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    off = _env(RENDERED["monitoring-off"])
    assert json.loads(off["MODEL_GARDEN_OPERATOR_METRICS_SCRAPER_PEERS"]) == []
    env = _operator_env("--set-json", f"monitoring.meterScrapers=[{json.dumps(PROMETHEUS)}]")
    settings = _settings(env, monkeypatch)
    assert meter_peers(settings)[1:] == [PROMETHEUS]
    # a peer with no selector would admit every pod: the schema refuses it before the operator
    bad = helm("template", "mg", str(CHART), "--set-json", "monitoring.meterScrapers=[{}]")
    assert bad.returncode != 0 and "meterScrapers" in bad.stderr


def test_grid_overrides_reach_the_operators_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "MODEL_GARDEN_OPERATOR_GRID_OVERRIDES" not in _env(RENDERED["monitoring-off"])
    env = _operator_env("--set-json", 'carbon.gridOverrides={"aws:eu-west-3": 21, "DEU": 300.5}')
    settings = _settings(env, monkeypatch)
    assert settings.grid_overrides == {"aws:eu-west-3": 21.0, "DEU": 300.5}
    bad = helm(
        "template", "mg", str(CHART), "--set-json", 'carbon.gridOverrides={"DEU": -1}'
    )  # fmt: skip
    assert bad.returncode != 0 and "gridOverrides" in bad.stderr


def test_carbon_budgets_reach_the_operators_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    default = _settings(_env(RENDERED["monitoring-off"]), monkeypatch)
    assert (default.namespace_budgets_kg, default.budget_action) == ({}, "wait")
    env = _operator_env(
        "--set-json",
        'carbon.budgets={"namespaces": {"team-a": 2.5}, "experiments": {"sweep": 0.5},'
        ' "action": "refuse"}',
    )
    settings = _settings(env, monkeypatch)
    assert settings.namespace_budgets_kg == {"team-a": 2.5}
    assert (settings.experiment_budgets_kg, settings.budget_action) == ({"sweep": 0.5}, "refuse")
    bad = helm("template", "mg", str(CHART), "--set", "carbon.budgets.action=later")
    assert bad.returncode != 0 and "action" in bad.stderr


def test_the_live_provider_reaches_the_operator_with_its_secret_as_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """carbon.provider: the settings name the mounted Secret's files, never a credential; the
    Secret is mounted read-only, and without a provider nothing is mounted."""
    flags = (
        "--set-json",
        'carbon.provider={"name": "electricitymaps", "url": "http://intensity.local:8080",'
        ' "existingSecret": "grid-credentials", "zones": {"FRA": "FR"}, "cacheSeconds": 0}',
        "--set-json",
        'carbon.scheduling={"maxDeferralSeconds": 7200, "maxPauseSeconds": 600}',
    )
    settings = _settings(_operator_env(*flags), monkeypatch)
    provider = settings.grid_provider
    assert provider is not None and provider.name == "electricitymaps"
    assert (provider.url, provider.zones, provider.cache_seconds) == (
        "http://intensity.local:8080",
        {"FRA": "FR"},
        0,
    )
    assert provider.api_key_file == "/etc/model-garden/grid-provider/apiKey"
    assert (settings.carbon_max_deferral_seconds, settings.carbon_max_pause_seconds) == (7200, 600)
    pod = _operator_pod(*flags)
    (volume,) = [v for v in pod["volumes"] if v["name"] == "grid-provider"]
    assert volume["secret"]["secretName"] == "grid-credentials"
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "grid-provider"]
    assert mount == {
        "name": "grid-provider",
        "mountPath": "/etc/model-garden/grid-provider",
        "readOnly": True,
    }
    default = _operator_pod()
    assert [v["name"] for v in default["volumes"]] == ["tmp"]
    assert "MODEL_GARDEN_OPERATOR_GRID_PROVIDER" not in _operator_env()
    bad = helm("template", "mg", str(CHART), "--set", "carbon.provider.name=carbonintensity")
    assert bad.returncode != 0 and "provider" in bad.stderr
