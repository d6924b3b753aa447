"""The YAML snippets of docs/serving.md's "Autoscaling" and "Roll-outs" sections validate: the
InferenceDeployments with our models (and plan into what the text says), the chart values with
the chart's values.schema.json (what helm checks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from model_garden.api import InferenceDeployment
from model_garden.operator.inferencedeployment.discovery import Platform
from model_garden.operator.inferencedeployment.plan import (
    InferenceDeploymentWorld,
    plan_inferencedeployment,
)

from .factories import NOW, SETTINGS, mvt

REPO = Path(__file__).resolve().parents[3]
SECTIONS = ("## Autoscaling", "## Roll-outs")


def _snippets() -> list[tuple[int, dict[str, Any]]]:
    """(line, document) of every ```yaml block inside the two sections."""
    lines = (REPO / "docs" / "serving.md").read_text(encoding="utf-8").splitlines()
    out: list[tuple[int, dict[str, Any]]] = []
    inside = False
    block: list[str] | None = None
    for number, line in enumerate(lines, start=1):
        if line.startswith("## "):
            inside = line.startswith(SECTIONS)
        if not inside:
            continue
        if block is None and line.strip() == "```yaml":
            block, start = [], number
        elif block is not None and line.strip() == "```":
            out += [(start, d) for d in yaml.safe_load_all("\n".join(block)) if d]
            block = None
        elif block is not None:
            block.append(line)
    return out


SNIPPETS = _snippets()


def test_the_sections_have_their_snippets() -> None:
    kinds = [doc.get("kind", "values") for _, doc in SNIPPETS]
    assert kinds.count("InferenceDeployment") == 3 and kinds.count("values") == 2


@pytest.mark.parametrize(("line", "doc"), SNIPPETS, ids=[f"serving.md:{n}" for n, _ in SNIPPETS])
def test_snippet_validates(line: int, doc: dict[str, Any]) -> None:
    if doc.get("kind") == "InferenceDeployment":
        idep = InferenceDeployment.model_validate(doc)
        body = json.loads(json.dumps(doc))
        body["metadata"].update(uid="uid-doc", namespace="default")
        versions = [mvt(f"support-bot-v{i}", "support-bot", i) for i in (3, 4)]
        versions.append(mvt("support-bot-v9", "support-bot", 9, stage="production"))
        world = InferenceDeploymentWorld(model_versions=versions, platform=Platform(keda=True))
        settings = SETTINGS.model_copy(update={"autoscaling_prometheus_url": "http://p:9090"})
        plan = plan_inferencedeployment(body, world, settings, NOW)
        kinds = {o["kind"] for o in plan.apply}
        if idep.spec.autoscaling is not None:
            assert "ScaledObject" in kinds
        if idep.spec.traffic:
            deployments = [o for o in plan.apply if o["kind"] == "Deployment"]
            assert len(deployments) == len(idep.spec.traffic)
    else:
        schema = json.loads((REPO / "charts/model-garden/values.schema.json").read_text())
        values = yaml.safe_load((REPO / "charts/model-garden/values.yaml").read_text())
        merged = {**values, **{k: {**values.get(k, {}), **v} for k, v in doc.items()}}
        jsonschema.Draft7Validator(schema).validate(merged)
