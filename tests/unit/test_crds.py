"""The generated CRDs: current with the models, structural, and their CEL rules do what they say."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import pytest
from click.testing import CliRunner

from harness.invalid_cases import CASES, FTJ, IDEP, MV, edit
from model_garden.api.crdgen import all_crds, cel_rules, strip_cel
from model_garden.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def test_committed_crds_match_the_models() -> None:
    result = CliRunner().invoke(cli, ["crds", "generate", "--check", "--out", str(REPO / "crds")])
    assert result.exit_code == 0, result.output


def test_check_fails_when_a_crd_is_stale(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["crds", "generate", "--out", str(tmp_path)]).exit_code == 0
    victim = next(tmp_path.glob("*.yaml"))
    victim.write_text(victim.read_text().replace("ftj", "fj"))
    result = runner.invoke(cli, ["crds", "generate", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1


def walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        nodes += walk(sub, f"{path}.{name}")
    if "items" in schema:
        nodes += walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        nodes += walk(schema["additionalProperties"], f"{path}{{}}")
    return nodes


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    version = crd["spec"]["versions"][0]
    for path, node in walk(version["schema"]["openAPIV3Schema"]):
        assert "type" in node, f"{path} has no type"
        assert not {"$ref", "anyOf", "oneOf", "allOf", "title"} & node.keys(), path
        if path.startswith(".spec"):
            assert node["type"] != "number", f"{path}: no floats in spec"
    assert "status" in version["subresources"]
    names = crd["spec"]["names"]
    assert names["categories"] == ["modelgarden"] and names["shortNames"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[-1] == "Age" and ("Succeeded" in columns or "Ready" in columns)


def test_inference_deployment_has_scale_subresource() -> None:
    idep = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "InferenceDeployment")
    scale = idep["spec"]["versions"][0]["subresources"]["scale"]
    assert scale["specReplicasPath"] == ".spec.replicas"


def test_strip_cel_removes_every_rule() -> None:
    for crd in all_crds():
        assert cel_rules(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        assert not cel_rules(strip_cel(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


# --- CEL rules, evaluated with cel-python the way the API server would (self / oldSelf) ---


def rules_for(kind: str) -> list[tuple[str, dict[str, str]]]:
    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == kind)
    return cel_rules(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def nodes_at(doc: Any, path: str) -> list[tuple[str, Any]]:
    """The nodes a schema path names in ``doc`` with their concrete paths (``[]``: every item)."""
    found: list[tuple[str, Any]] = [("", doc)]
    for part in [p for p in path.split(".") if p]:
        name, items = part.removesuffix("[]"), part.endswith("[]")
        step = []
        for where, node in found:
            if isinstance(node, dict) and name in node:
                here = f"{where}.{name}" if where else name
                if items and isinstance(node[name], list):
                    step += [(f"{here}[{i}]", item) for i, item in enumerate(node[name])]
                elif not items:
                    step.append((here, node[name]))
        found = step
    return found


def cel_violations(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Messages of the rules ``obj`` breaks (transition rules only when ``old`` is given)."""
    env = celpy.Environment()
    broken = []
    for path, rule in rules_for(obj["kind"]):
        olds = dict(nodes_at(old, path)) if old is not None else {}
        for where, node in nodes_at(obj, path):
            activation = {"self": celpy.json_to_cel(node)}
            if "oldSelf" in rule["rule"]:
                if where not in olds:
                    continue
                activation["oldSelf"] = celpy.json_to_cel(olds[where])
            result = env.program(env.compile(rule["rule"])).evaluate(activation)
            if not bool(result):
                broken.append(f"{where or '<root>'}: {rule['message']}")
    return broken


@pytest.mark.parametrize("body", [FTJ, MV, IDEP], ids=lambda b: b["kind"])
def test_valid_samples_pass_every_cel_rule(body: dict[str, Any]) -> None:
    assert cel_violations(body, old=body) == []


@pytest.mark.parametrize("case", [c for c in CASES if not c.apiserver], ids=lambda c: c.id)
def test_cel_refuses_what_1_20_cannot(case) -> None:  # type: ignore[no-untyped-def]
    broken = cel_violations(case.body)
    assert broken, "a CEL rule should refuse this"
    assert any(
        b.split(":")[0] in (case.field, "<root>") or b.startswith(case.field) for b in broken
    ), broken


def test_modelversion_spec_is_immutable_except_stage() -> None:
    changed_uri = edit(MV, "spec.artifact.uri", "pvc://other/place")
    assert cel_violations(changed_uri, old=MV) == [
        "spec: spec is immutable except stage; create a new ModelVersion"
    ]
    promoted = edit(MV, "spec.stage", "staging")
    assert cel_violations(promoted, old=MV) == []
    added_metric = copy.deepcopy(MV)
    added_metric["spec"]["metrics"]["accuracy"] = "0.9"
    assert cel_violations(added_metric, old=MV)


@pytest.mark.parametrize("crd", all_crds(), ids=lambda c: c["spec"]["names"]["kind"])
def test_every_field_is_documented(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    undocumented = [
        path
        for path, node in walk(schema)
        if path.count(".") >= 1
        and path not in (".apiVersion", ".kind", ".metadata")
        and not path.endswith(("{}", "[]"))  # items and map values: their field says it
        and "description" not in node
    ]
    assert undocumented == []
