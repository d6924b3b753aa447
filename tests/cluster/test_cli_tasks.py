"""``mg export`` and ``mg eval`` against a cluster: the same command lines as in local mode run
the programs as Jobs beside the files (the version's claim), under the restricted profile, and
leave nothing running. The version is the seeded base model, imported as a ModelVersion and
verified by the operator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.node import Node

from .platform import (
    API,
    BASE_URI,
    CLAIM,
    DATASET_URI,
    RUNTIME_IMAGE,
    TEAM,
    Platform,
    condition,
    wait_for,
)

pytestmark = pytest.mark.cluster

VERSION = "seed-v1"


@pytest.fixture(scope="module")
def version(platform: Platform) -> dict[str, Any]:
    platform.apply(
        {
            "apiVersion": API,
            "kind": "ModelVersion",
            "metadata": {"name": VERSION, "namespace": TEAM},
            "spec": {
                "model": "seed",
                "version": 1,
                "artifact": {"uri": BASE_URI, "format": "merged"},
            },
        }
    )

    def verified() -> dict[str, Any] | None:
        mv = platform.get("modelversion", VERSION)
        return mv if condition(mv, "Ready").get("status") == "True" else None

    return wait_for("the imported version verified", verified, 180)


def task_jobs(platform: Platform) -> list[str]:
    return [
        j["metadata"]["name"]
        for j in platform.items("jobs", selector=f"modelgarden.dev/model-version={VERSION}")
    ]


def test_export_runs_as_a_job_onto_the_claim(
    platform: Platform, version: dict[str, Any], own_node: Node | None
) -> None:
    ran = platform.mg("export", VERSION, "--image", RUNTIME_IMAGE, timeout=600)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = f"pvc://{CLAIM}/{TEAM}/exports/{VERSION}-merged"
    assert f"exported {VERSION} (copied) to {out} as merged safetensors" in ran.stdout
    assert "CO2e" in ran.stdout
    assert not [j for j in task_jobs(platform) if "-export-" in j], "the Job is cleaned up"
    if own_node is not None:  # the claim is a hostPath here: the files are on this machine
        folder = own_node.workdir / "artifacts" / TEAM / "exports" / f"{VERSION}-merged"
        names = {p.name for p in folder.iterdir()}
        assert {"model.safetensors", "config.json", "export.json", "README.md"} <= names, names
        result = json.loads((folder / "export.json").read_text())
        assert result["outcome"] == "Succeeded" and result["carbon"]["energyKwh"] > 0
    again = platform.mg("export", VERSION, "--format", "gguf-f16")
    assert again.returncode == 2 and "in a cluster mg export makes merged" in again.stderr


def test_eval_runs_as_a_job_and_the_operator_records_it(
    platform: Platform, version: dict[str, Any]
) -> None:
    ran = platform.mg(
        *("eval", VERSION, "--dataset", DATASET_URI, "--format", "alpaca"),
        *("--max-examples", "16", "--prompt", "Describe the pets.", "--max-new-tokens", "4"),
        *("--image", RUNTIME_IMAGE, "-o", "json"),
        timeout=600,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout)
    assert result["outcome"] == "Succeeded" and result["examples"] == 16, result
    assert len(result["samples"]) == 1

    def recorded() -> dict[str, Any] | None:
        mv = platform.get("modelversion", VERSION) or {}
        return (mv.get("status") or {}).get("evaluation")

    evaluation = wait_for("status.evaluation from the operator", recorded, 60)
    assert evaluation["loss"] == result["loss"] and evaluation["examples"] == 16
    assert evaluation["report"] == f"pvc://{CLAIM}/{TEAM}/evaluations/{VERSION}/eval.json"
    plain = platform.mg("eval", VERSION, "--dataset", "held.jsonl")
    assert plain.returncode == 2 and "in a cluster, a pvc:// URI" in plain.stderr
