"""The chart, rendered by the real helm for each value set: lint, Kubernetes schemas (1.28 and the
newest bundled), the restricted Pod Security profile, and what each value set must produce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from unit.operator.test_manifests import pod_spec, restricted_violations

from .render import (
    CHART,
    NAMESPACE,
    REPO,
    VALUE_SETS,
    ValueSet,
    by_kind,
    helm,
    helm3_binary,
    render,
    template,
)

pytestmark = pytest.mark.chart

KUBERNETES_VERSIONS = ["1.28.0", kubernetes_validate.utils.latest_version()]
# Kinds served by CRDs of other projects: kubernetes-validate has no schema for them, so each
# is checked by its own test below (structure, promtool for the rules).
CRD_KINDS = {
    "monitoring.coreos.com/v1": {"ServiceMonitor", "PodMonitor", "PrometheusRule"},
    "kueue.x-k8s.io/v1beta1": {"ResourceFlavor", "ClusterQueue", "LocalQueue"},
    "kueue.x-k8s.io/v1beta2": {"ResourceFlavor", "ClusterQueue", "LocalQueue"},
}
RENDERED = {vs.name: render(vs) for vs in VALUE_SETS}
ALL = [(vs.name, o) for vs in VALUE_SETS for o in RENDERED[vs.name]]


def ident(item: tuple[str, dict[str, Any]]) -> str:
    name, obj = item
    return f"{name}:{obj['kind']}/{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda v: v.name)
@pytest.mark.parametrize("major", [3, 4])
def test_helm_lint_strict(values: ValueSet, major: int) -> None:
    binary = helm3_binary() if major == 3 else None
    proc = helm("lint", str(CHART), "--strict", *values.value_args(), binary=binary)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    version = helm("version", "--short", binary=binary).stdout
    assert version.startswith(f"v{major}."), version


@pytest.mark.parametrize("values", VALUE_SETS, ids=lambda v: v.name)
def test_helm_3_renders_what_helm_4_renders(values: ValueSet) -> None:
    assert template(values, binary=helm3_binary()) == template(values)


def _is_crd_kind(obj: dict[str, Any]) -> bool:
    return obj["kind"] in CRD_KINDS.get(obj["apiVersion"], set())


def _chart(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects besides the read API's (test_readapi_chart.py checks those)."""
    return [
        o
        for o in objs
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "readapi"
    ]


BUILTIN = [item for item in ALL if not _is_crd_kind(item[1])]


@pytest.mark.parametrize("item", BUILTIN, ids=[ident(i) for i in BUILTIN])
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_rendered_object_validates_strictly(item: tuple[str, dict[str, Any]], version: str) -> None:
    kubernetes_validate.validate(item[1], version, strict=True)


def test_every_kind_is_validated_somewhere() -> None:
    """Nothing slips past both kubernetes-validate and the CRD-kind checks below."""
    unknown = {
        (o["apiVersion"], o["kind"])
        for _, o in ALL
        if "/" in o["apiVersion"]
        and o["apiVersion"].split("/")[0].endswith((".coreos.com", ".x-k8s.io"))
        and not _is_crd_kind(o)
    }
    assert unknown == set()


PODS = [item for item in ALL if item[1]["kind"] == "Pod" or pod_spec(item[1]) is not None]


@pytest.mark.parametrize("item", PODS, ids=[ident(i) for i in PODS])
def test_pods_meet_the_restricted_pod_security_profile(item: tuple[str, dict[str, Any]]) -> None:
    obj = item[1]
    spec = obj["spec"] if obj["kind"] == "Pod" else pod_spec(obj)
    assert spec is not None
    assert restricted_violations(spec) == []
    for c in spec["containers"]:
        assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]


def test_chart_crds_are_the_generated_crds() -> None:
    """Helm installs crds/ verbatim: it must be byte-identical to `model-garden crds generate`."""
    generated = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    shipped = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert shipped == generated
    for name in generated:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), name


def test_cluster_rbac_is_deploy_rbac_and_least_privilege() -> None:
    (role,) = by_kind(_chart(RENDERED["default"]), "ClusterRole")
    reference = yaml.safe_load((REPO / "deploy" / "rbac" / "clusterrole.yaml").read_text())
    assert role["rules"] == reference["rules"]
    for rule in role["rules"]:
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"]
        assert "secrets" not in rule["resources"]


def _operator(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = by_kind(_chart(objs), "Deployment")
    return dep


def _env(objs: list[dict[str, Any]]) -> dict[str, str]:
    (container,) = _operator(objs)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_operator_runs_one_replica_with_kopf_probes_and_a_metrics_port() -> None:
    dep = _operator(RENDERED["default"])
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    env = _env(RENDERED["default"])
    assert ports == {"metrics": 8080, "health": 8081}
    assert env["MODEL_GARDEN_OPERATOR_METRICS_PORT"] == "8080"
    assert env["MODEL_GARDEN_OPERATOR_HEALTH_PORT"] == "8081"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["image"] == "ghcr.io/model-garden/operator:0.1.0"  # tag defaults to appVersion
    proc = helm("template", "mg", str(CHART), "--set", "operator.replicas=2")
    assert proc.returncode != 0 and "replicas" in proc.stderr


def test_operator_settings_name_the_chart_objects() -> None:
    env = _env(RENDERED["default"])
    (policy,) = [c for c in by_kind(RENDERED["default"], "ConfigMap") if "policy.yaml" in c["data"]]
    assert env["MODEL_GARDEN_OPERATOR_POLICY_CONFIG_MAP"] == policy["metadata"]["name"]
    assert env["MODEL_GARDEN_OPERATOR_POLICY_NAMESPACE"] == policy["metadata"]["namespace"]
    labels = yaml.safe_load(env["MODEL_GARDEN_OPERATOR_OPERATOR_POD_LABELS"])
    pod_labels = _operator(RENDERED["default"])["spec"]["template"]["metadata"]["labels"]
    assert labels.items() <= pod_labels.items()
    assert env["MODEL_GARDEN_OPERATOR_NAMESPACES"] == "[]"
    assert env["MODEL_GARDEN_OPERATOR_TRAINER_IMAGE"] == "ghcr.io/model-garden/trainer:0.1.0"


def test_settings_the_chart_sets_exist_in_operator_settings() -> None:
    """A misspelt MODEL_GARDEN_OPERATOR_* variable would be silently ignored by the operator."""
    from model_garden.operator.settings import OperatorSettings

    known = {f"MODEL_GARDEN_OPERATOR_{name.upper()}" for name in OperatorSettings.model_fields}
    for name in VALUE_SETS:
        env = _env(RENDERED[name.name])
        assert set(env) <= known, set(env) - known


def test_policy_configmap_parses_as_the_operators_admin_policy() -> None:
    from model_garden.operator.policy import AdminPolicy

    for vs in VALUE_SETS:
        (cm,) = [c for c in by_kind(RENDERED[vs.name], "ConfigMap") if "policy.yaml" in c["data"]]
        policy = AdminPolicy.model_validate(yaml.safe_load(cm["data"]["policy.yaml"]))
        assert "nvidia.com/gpu" in policy.allowed_toleration_keys or vs.name == "cpu-profile"
        if vs.name == "gpu-kueue":
            assert policy.allowed_output_claims == ["model-garden-artifacts"]
            assert policy.max_gpus_per_pod == 8


def test_namespaced_install_has_roles_only_where_it_watches() -> None:
    objs = _chart(RENDERED["namespaced"])
    assert by_kind(objs, "ClusterRole") == [] and by_kind(objs, "ClusterRoleBinding") == []
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in by_kind(objs, "Role")}
    assert ("team-a", "mg-model-garden-operator") in roles
    assert ("team-b", "mg-model-garden-operator") in roles
    # The policy ConfigMap is outside the watched namespaces: one get on that one name.
    reader = [r for r in by_kind(objs, "Role") if r["metadata"]["namespace"] == NAMESPACE]
    assert [r["rules"] for r in reader] == [
        [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["model-garden-policy"],
                "verbs": ["get"],
            }
        ]
    ]
    assert yaml.safe_load(_env(objs)["MODEL_GARDEN_OPERATOR_NAMESPACES"]) == ["team-a", "team-b"]
    claims = {c["metadata"]["namespace"] for c in by_kind(objs, "PersistentVolumeClaim")}
    assert claims == {"team-a", "team-b"}
    (pm,) = by_kind(objs, "PodMonitor")
    assert pm["spec"]["namespaceSelector"] == {"matchNames": ["team-a", "team-b"]}


def test_gpu_kueue_install_creates_queues_for_the_gpu_nodes() -> None:
    objs = RENDERED["gpu-kueue"]
    (flavor,) = by_kind(objs, "ResourceFlavor")
    assert flavor["apiVersion"] == "kueue.x-k8s.io/v1beta1"
    assert flavor["spec"]["nodeLabels"]["nvidia.com/gpu.present"] == "true"
    assert flavor["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    (cq,) = by_kind(objs, "ClusterQueue")
    assert cq["spec"]["cohort"] == "ml-platform"
    group = cq["spec"]["resourceGroups"][0]
    assert group["coveredResources"] == ["cpu", "memory", "nvidia.com/gpu"]
    assert [r["name"] for r in group["flavors"][0]["resources"]] == group["coveredResources"]
    (lq,) = by_kind(objs, "LocalQueue")
    assert (
        lq["metadata"]["namespace"] == NAMESPACE
        and lq["spec"]["clusterQueue"] == cq["metadata"]["name"]
    )
    env = _env(objs)
    assert env["MODEL_GARDEN_OPERATOR_DEFAULT_COUNTRY"] == "FRA"
    (pvc,) = by_kind(objs, "PersistentVolumeClaim")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # Where Kueue serves v1beta2 (0.15+), the chart uses it and its renamed cohort field.
    v2 = render(
        ValueSet("gpu-kueue-v1beta2", ("ci/gpu-kueue-values.yaml",), ("kueue.x-k8s.io/v1beta2",))
    )
    (cq2,) = by_kind(v2, "ClusterQueue")
    assert (
        cq2["apiVersion"] == "kueue.x-k8s.io/v1beta2" and cq2["spec"]["cohortName"] == "ml-platform"
    )


def test_monitoring_objects_follow_the_toggles_and_the_served_apis() -> None:
    default = {o["kind"] for o in RENDERED["default"]}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule"} <= default
    off = {o["kind"] for o in RENDERED["monitoring-off"]}
    assert not {"ServiceMonitor", "PodMonitor", "PrometheusRule"} & off
    assert not [
        c
        for c in by_kind(RENDERED["monitoring-off"], "ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    # Enabled but not served: skipped, and NOTES.txt says so.
    plain = render(ValueSet("no-prometheus-operator", api_versions=()))
    assert not {"ServiceMonitor", "PodMonitor", "PrometheusRule"} & {o["kind"] for o in plain}
    proc = helm("install", "mg", str(CHART), "-n", NAMESPACE, "--dry-run=client")
    assert proc.returncode == 0, proc.stderr
    assert "does not serve monitoring.coreos.com/v1" in proc.stdout


def test_monitors_select_the_operator_and_the_workload_ports() -> None:
    objs = RENDERED["default"]
    (sm,) = by_kind(objs, "ServiceMonitor")
    (svc,) = by_kind(_chart(objs), "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert [e["port"] for e in sm["spec"]["endpoints"]] == [p["name"] for p in svc["spec"]["ports"]]
    (pm,) = by_kind(objs, "PodMonitor")
    # Ports the operator gives trainer ("progress") and server ("metrics": the meter; "http":
    # vLLM's own /metrics, whose gauges the autoscalers read) containers.
    assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} == {"progress", "metrics", "http"}
    assert all(e["honorLabels"] for e in pm["spec"]["podMetricsEndpoints"])
    assert pm["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "model-garden-operator"
    }


def test_dashboard_configmap_carries_the_sidecar_label_and_the_json() -> None:
    (cm,) = [
        c
        for c in by_kind(RENDERED["default"], "ConfigMap")
        if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"]["model-garden.json"] == (
        CHART / "dashboards" / "model-garden.json"
    ).read_text().rstrip("\n")


def _cpu_millis(q: str) -> float:
    return float(q[:-1]) if q.endswith("m") else float(q) * 1000


def test_cpu_profile_requests_at_most_500m_per_pod() -> None:
    objs = RENDERED["cpu-profile"]
    for obj in objs:
        spec = obj["spec"] if obj["kind"] == "Pod" else pod_spec(obj)
        if spec is None:
            continue
        total = sum(_cpu_millis(c["resources"]["requests"]["cpu"]) for c in spec["containers"])
        assert total <= 500, obj["metadata"]["name"]
    env = _env(objs)
    for key in ("TRAINER_CPU", "SERVER_CPU", "VERIFY_CPU"):
        assert _cpu_millis(env[f"MODEL_GARDEN_OPERATOR_{key}"]) <= 500, key
    cpu_image = "ghcr.io/model-garden/runtime-cpu:0.1.0"
    assert (
        env["MODEL_GARDEN_OPERATOR_TRAINER_IMAGE"]
        == env["MODEL_GARDEN_OPERATOR_SERVER_IMAGE"]
        == cpu_image
    )


def test_helm_test_pod_is_a_test_hook() -> None:
    (pod,) = by_kind(RENDERED["default"], "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (svc,) = by_kind(_chart(RENDERED["default"]), "Service")
    assert svc["metadata"]["name"] in pod["spec"]["containers"][0]["command"][-1]


def test_values_schema_accepts_every_shipped_values_file_and_refuses_mistakes() -> None:
    import json

    import jsonschema  # type: ignore[import-untyped]

    schema = json.loads((CHART / "values.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    base = yaml.safe_load((CHART / "values.yaml").read_text())
    assert list(validator.iter_errors(base)) == []
    for path in [CHART / "values-cpu.yaml", *sorted((CHART / "ci").glob("*.yaml"))]:
        merged = _merge(base, yaml.safe_load(path.read_text()))
        assert list(validator.iter_errors(merged)) == [], path.name
    for bad in (
        {"operator": {"replicaz": 1}},
        {"images": {"operator": {"tag": "latest"}}},
        {"rbac": {"scope": "namespace"}},
        {"carbon": {"defaultCountry": "us"}},
        {"workloads": {"trainer": {"cpu": "two"}}},
    ):
        assert list(validator.iter_errors(_merge(base, bad))), bad


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {k: _merge(base.get(k), over[k]) if k in base else over[k] for k in over} | {
            k: v for k, v in base.items() if k not in over
        }
    return over


def test_schema_documents_every_value() -> None:
    """values.yaml and values.schema.json list the same keys (no value the schema cannot check)."""
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(v: Any, s: dict[str, Any], path: str) -> list[str]:
        out: list[str] = []
        if isinstance(v, dict) and "properties" in s:
            missing = set(v) - set(s["properties"])
            out += [f"{path}.{k}" for k in sorted(missing)]
            for k in v:
                if k in s["properties"]:
                    out += walk(v[k], s["properties"][k], f"{path}.{k}")
        return out

    assert walk(values, schema, "") == []


def test_rendered_files_exist() -> None:
    assert Path(CHART / "templates" / "NOTES.txt").is_file()
