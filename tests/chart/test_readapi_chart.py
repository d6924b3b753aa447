"""The read API's objects in the chart (templates/readapi-*.yaml), rendered by the real helm:
Kubernetes schemas, the restricted Pod Security profile, least-privilege RBAC, the optional
Ingress, the artifacts claim, and checkov on every value set plus one with the Ingress on."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from unit.operator.test_manifests import pod_spec, restricted_violations

from .render import CHART, NAMESPACE, REPO, VALUE_SETS, ValueSet, by_kind, helm, render
from .test_checkov import ALLOWED_SKIPS, checkov_reports, failed_checks

pytestmark = pytest.mark.chart

COMPONENT = "readapi"
INGRESS = ValueSet(
    "readapi-ingress",
    sets=(
        "readapi.ingress.enabled=true",
        "readapi.ingress.className=nginx",
        "readapi.ingress.host=garden.example.com",
        "readapi.ingress.tls[0].secretName=garden-tls",
        "readapi.ingress.tls[0].hosts[0]=garden.example.com",
    ),
)
NODE = ValueSet(
    "cluster-node",
    ("values-cpu.yaml", "../../tests/cluster/values-node.yaml"),
    api_versions=(),
)
SETS = [*VALUE_SETS, INGRESS, NODE]
RENDERED = {vs.name: render(vs) for vs in SETS}
KUBERNETES_VERSIONS = ["1.28.0", kubernetes_validate.utils.latest_version()]
REVIEWS = {
    ("authentication.k8s.io", "tokenreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
}
READ = {"get", "list", "watch"}


def readapi(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The read API's objects (its component label)."""
    return [
        o
        for o in objs
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == COMPONENT
    ]


def deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = by_kind(readapi(objs), "Deployment")
    return dep


def container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = deployment(objs)["spec"]["template"]["spec"]["containers"]
    return dict(c)


ITEMS = [(vs.name, o) for vs in SETS for o in readapi(RENDERED[vs.name])]


@pytest.mark.parametrize(
    "item", ITEMS, ids=[f"{n}:{o['kind']}/{o['metadata']['name']}" for n, o in ITEMS]
)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_readapi_objects_validate_strictly(item: tuple[str, dict[str, Any]], version: str) -> None:
    kubernetes_validate.validate(item[1], version, strict=True)


def test_every_value_set_has_the_read_api_and_its_rbac() -> None:
    for vs in SETS:
        kinds = sorted(o["kind"] for o in readapi(RENDERED[vs.name]))
        assert {
            "Deployment",
            "Service",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
        } <= set(kinds), (vs.name, kinds)
        assert ("Ingress" in kinds) == (vs.name == INGRESS.name), vs.name
    off = render(ValueSet("readapi-off", sets=("readapi.enabled=false",)))
    assert readapi(off) == []
    assert not [o for o in off if "readapi" in o["metadata"]["name"]]


@pytest.mark.parametrize("values", SETS, ids=lambda v: v.name)
def test_read_api_pod_meets_the_restricted_profile(values: ValueSet) -> None:
    spec = pod_spec(deployment(RENDERED[values.name]))
    assert spec is not None
    assert restricted_violations(spec) == []
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["enableServiceLinks"] is False
    (c,) = spec["containers"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]
    if values.name == "cpu-profile":
        assert c["resources"]["requests"]["cpu"] in ("50m", "100m")  # fits the 2-core node


def test_read_api_runs_the_operator_image_in_cluster_mode_with_info_probes() -> None:
    objs = RENDERED["default"]
    c = container(objs)
    assert c["image"] == "ghcr.io/model-garden/operator:0.1.0"  # tag defaults to appVersion
    assert c["command"] == ["python", "-m", "model_garden.readapi"]
    assert c["args"] == ["--cluster", "--host", "0.0.0.0", "--port", "8080"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8080}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/api/v1/info", "port": "http"}
    (svc,) = by_kind(readapi(objs), "Service")
    pod_labels = deployment(objs)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    sa = deployment(objs)["spec"]["template"]["spec"]["serviceAccountName"]
    assert [s["metadata"]["name"] for s in by_kind(readapi(objs), "ServiceAccount")] == [sa]
    # Not the operator's pods: neither its Service nor its NetworkPolicy select them.
    operator_selectors = [
        s["spec"]["selector"] for s in by_kind(objs, "Service") if s is not svc
    ] + [
        n["spec"]["podSelector"]["matchLabels"]
        for n in by_kind(objs, "NetworkPolicy")
        if n not in readapi(objs)
    ]
    for selector in operator_selectors:
        assert not selector.items() <= pod_labels.items(), selector
    custom = render(ValueSet("pinned", sets=("images.operator.tag=0.2.0", "readapi.port=9000")))
    c = container(custom)
    assert c["image"] == "ghcr.io/model-garden/operator:0.2.0"
    assert c["args"][-1] == "9000" and c["ports"][0]["containerPort"] == 9000


def _rules(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for role in by_kind(readapi(objs), kind) for r in role["rules"]]


@pytest.mark.parametrize("values", SETS, ids=lambda v: v.name)
def test_read_api_rbac_is_least_privilege(values: ValueSet) -> None:
    objs = RENDERED[values.name]
    rules = _rules(objs, "ClusterRole") + _rules(objs, "Role")
    assert rules
    for rule in rules:
        every = rule["apiGroups"] + rule["resources"] + rule["verbs"]
        assert "*" not in every and "secrets" not in rule["resources"], rule
        assert not rule.get("resourceNames") and not rule.get("nonResourceURLs"), rule
        pairs = {(g, r) for g in rule["apiGroups"] for r in rule["resources"]}
        if pairs & REVIEWS:
            assert pairs <= REVIEWS and rule["verbs"] == ["create"], rule
        else:
            assert set(rule["verbs"]) <= READ, rule  # writes are made with the caller's token
            assert pairs <= {
                ("modelgarden.dev", "finetunejobs"),
                ("modelgarden.dev", "modelversions"),
                ("modelgarden.dev", "inferencedeployments"),
                ("", "events"),
                ("", "namespaces"),
            }, rule
            if ("", "namespaces") in pairs:
                assert rule["verbs"] == ["list"] and pairs == {("", "namespaces")}, rule
    created = {
        (g, r)
        for rule in rules
        if "create" in rule["verbs"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert created == REVIEWS
    # Bound to the read API's own ServiceAccount only (never the operator's).
    sa = deployment(objs)["spec"]["template"]["spec"]["serviceAccountName"]
    for binding in by_kind(readapi(objs), "ClusterRoleBinding") + by_kind(
        readapi(objs), "RoleBinding"
    ):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}
        ]


def test_namespaced_install_reads_only_the_watched_namespaces() -> None:
    objs = RENDERED["namespaced"]
    (cluster_role,) = by_kind(readapi(objs), "ClusterRole")
    groups = {
        (g, r)
        for rule in cluster_role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert groups == REVIEWS  # cluster-scoped kinds only
    roles = {r["metadata"]["namespace"] for r in by_kind(readapi(objs), "Role")}
    bindings = {r["metadata"]["namespace"] for r in by_kind(readapi(objs), "RoleBinding")}
    assert roles == bindings == {"team-a", "team-b"}
    # Its cache then watches only those namespaces (it may not list cluster-wide).
    env = {e["name"]: e.get("value") for e in container(objs)["env"]}
    assert env["MODEL_GARDEN_READAPI_WATCH_NAMESPACES"] == "team-a,team-b"
    default = RENDERED["default"]
    assert by_kind(readapi(default), "Role") == []
    env = {e["name"]: e.get("value") for e in container(default)["env"]}
    assert "MODEL_GARDEN_READAPI_WATCH_NAMESPACES" not in env
    (cluster_role,) = by_kind(readapi(default), "ClusterRole")
    kinds = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert {"finetunejobs", "modelversions", "inferencedeployments", "events"} <= kinds


def test_ingress_is_off_by_default_and_routes_to_the_service_when_on() -> None:
    for vs in VALUE_SETS:
        assert by_kind(RENDERED[vs.name], "Ingress") == [], vs.name
    objs = RENDERED[INGRESS.name]
    (ing,) = by_kind(readapi(objs), "Ingress")
    (svc,) = by_kind(readapi(objs), "Service")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"secretName": "garden-tls", "hosts": ["garden.example.com"]}]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "garden.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/" and path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": svc["metadata"]["name"], "port": {"name": "http"}}
    anyhost = render(ValueSet("ingress-any-host", sets=("readapi.ingress.enabled=true",)))
    (ing,) = by_kind(readapi(anyhost), "Ingress")
    assert "host" not in ing["spec"]["rules"][0] and "tls" not in ing["spec"]


def _mounts(objs: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    c = container(objs)
    spec = pod_spec(deployment(objs))
    assert spec is not None
    volumes = {v["name"]: v for v in spec["volumes"]}
    env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
    return {m["name"]: m["mountPath"] for m in c["volumeMounts"]}, volumes, env


def test_artifacts_claim_is_mounted_where_the_chart_makes_it_in_the_release_namespace() -> None:
    # CPU profile: the chart creates the claim in the release namespace: uploads land there.
    mounts, volumes, env = _mounts(RENDERED["cpu-profile"])
    (pvc,) = by_kind(RENDERED["cpu-profile"], "PersistentVolumeClaim")
    assert pvc["metadata"]["namespace"] == NAMESPACE
    assert volumes["artifacts"]["persistentVolumeClaim"] == {"claimName": pvc["metadata"]["name"]}
    assert mounts["artifacts"] == env["MODEL_GARDEN_ARTIFACTS_DIR"] == "/artifacts"
    assert "emptyDir" in volumes["tmp"] and mounts["tmp"] == "/tmp"
    # No claim in the release namespace (none made, or made only in team namespaces): no mount.
    for name in ("default", NODE.name, "namespaced"):
        mounts, volumes, env = _mounts(RENDERED[name])
        assert "artifacts" not in volumes and "MODEL_GARDEN_ARTIFACTS_DIR" not in env, name
    # A claim named explicitly is mounted as it is.
    mounts, volumes, env = _mounts(
        render(ValueSet("own-claim", sets=("readapi.artifacts.claimName=shared-data",)))
    )
    assert volumes["artifacts"]["persistentVolumeClaim"]["claimName"] == "shared-data"
    _, _, env = _mounts(
        render(ValueSet("prom", sets=("readapi.prometheusUrl=http://prometheus.monitoring:9090",)))
    )
    assert env["MODEL_GARDEN_READAPI_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"


def test_network_policy_admits_only_the_http_port() -> None:
    objs = RENDERED["default"]
    (pol,) = by_kind(readapi(objs), "NetworkPolicy")
    labels = deployment(objs)["spec"]["template"]["metadata"]["labels"]
    assert pol["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert pol["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    off = render(ValueSet("netpol-off", sets=("networkPolicy.enabled=false",)))
    assert by_kind(readapi(off), "NetworkPolicy") == []


def test_values_schema_refuses_read_api_mistakes() -> None:
    for bad in (
        "readapi.replicaz=1",
        "readapi.ingress.pathType=Anything",
        "readapi.service.type=External",
        "readapi.prometheusUrl=prometheus:9090",
        "readapi.port=0",
    ):
        proc = helm("template", "mg", str(CHART), "--set", bad)
        assert proc.returncode != 0 and "readapi" in proc.stderr, bad


def test_checkov_passes_on_the_read_api_objects(tmp_path: Path) -> None:
    """test_checkov.py covers the shipped value sets; this adds the Ingress and the node's."""
    for vs in SETS:
        (tmp_path / f"{vs.name}.yaml").write_text(yaml.safe_dump_all(readapi(RENDERED[vs.name])))
    reports = checkov_reports(tmp_path)
    failed = failed_checks(reports)
    assert failed == [], "\n".join(failed)
    checked = {c["resource"] for r in reports for c in r["results"]["passed_checks"]}
    assert any(r.startswith("Ingress.") for r in checked), sorted(checked)
    assert any(r.startswith("Deployment.") for r in checked), sorted(checked)
    skipped = {c["check_id"] for r in reports for c in r["results"]["skipped_checks"]}
    assert skipped <= ALLOWED_SKIPS, skipped - ALLOWED_SKIPS


def test_the_wheel_the_operator_image_installs_ships_the_built_dashboard(tmp_path: Path) -> None:
    """images/operator installs the project as a wheel (`uv sync --no-editable`): the committed
    build in model_garden/readapi/static/ must be in it, or the pod serves no dashboard."""
    static = REPO / "operator" / "model_garden" / "readapi" / "static"
    assert (static / "index.html").is_file(), "the dashboard is not built into the package"
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH"
    proc = subprocess.run(
        [uv, "build", "--wheel", "--offline", "-o", str(tmp_path), str(REPO)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = tmp_path.glob("model_garden-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        f"model_garden/readapi/static/{p.relative_to(static).as_posix()}"
        for p in static.rglob("*")
        if p.is_file()
    }
    assert shipped and shipped <= names, sorted(shipped - names)
    assert "model_garden/readapi/__main__.py" in names
    # The image's build context (.dockerignore is an allowlist) carries the package folder.
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "!operator/" in ignore
