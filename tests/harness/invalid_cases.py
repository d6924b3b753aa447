"""Invalid resources, each with the field its error must name. Shared by the unit and envtest tests.

``apiserver=True`` marks rules a Kubernetes 1.20 structural schema can express (enum, pattern,
minimum, required); the others are CEL rules (or model validators) that 1.20 cannot run, so
they are checked by the pydantic models and by evaluating the CRD's CEL with cel-python.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SAMPLES = Path(__file__).resolve().parents[2] / "crds" / "samples"


def sample(name: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all((SAMPLES / name).read_text()) if d]
    return copy.deepcopy(docs[0])


def edit(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or with value=DELETE remove) a dotted path in a copy of ``doc``."""
    out = copy.deepcopy(doc)
    node = out
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return out


DELETE = object()


@dataclass(frozen=True)
class Case:
    id: str
    body: dict[str, Any]
    field: str
    apiserver: bool


FTJ = sample("chain/01-finetunejob.yaml")
MV = sample("chain/02-modelversion.yaml")
IDEP = sample("chain/03-inferencedeployment.yaml")

CASES = [
    Case(
        "bad dataset format enum",
        edit(FTJ, "spec.dataset.format", "xml"),
        "spec.dataset.format",
        True,
    ),
    Case("missing dataset", edit(FTJ, "spec.dataset", DELETE), "spec.dataset", True),
    Case("missing base model", edit(FTJ, "spec.baseModel", DELETE), "spec.baseModel", True),
    Case(
        "negative LoRA rank", edit(FTJ, "spec.method.lora.rank", -4), "spec.method.lora.rank", True
    ),
    Case(
        "unknown dataset URI scheme",
        edit(FTJ, "spec.dataset.uri", "http://x/d.jsonl"),
        "spec.dataset.uri",
        True,
    ),
    Case(
        "learning rate not a decimal",
        edit(FTJ, "spec.hyperparameters.learningRate", "fast"),
        "spec.hyperparameters.learningRate",
        True,
    ),
    Case("negative GPUs", edit(FTJ, "spec.resources.gpus", -1), "spec.resources.gpus", True),
    Case("unknown backend", edit(FTJ, "spec.backend", "tensorflow"), "spec.backend", True),
    Case("unknown method", edit(FTJ, "spec.method.type", "dpo"), "spec.method.type", True),
    Case(
        "output model not a DNS label",
        edit(FTJ, "spec.output.model", "Support_Bot"),
        "spec.output.model",
        True,
    ),
    Case(
        "max sequence length too small",
        edit(FTJ, "spec.dataset.maxSeqLength", 4),
        "spec.dataset.maxSeqLength",
        True,
    ),
    Case(
        "memory not a quantity",
        edit(FTJ, "spec.resources.memory", "lots"),
        "spec.resources.memory",
        True,
    ),
    Case(
        "hub id with spaces",
        edit(FTJ, "spec.baseModel.hub.id", "not a repo"),
        "spec.baseModel.hub.id",
        True,
    ),
    Case(
        "country not ISO alpha-3",
        edit(FTJ, "spec.carbon.country", "france"),
        "spec.carbon.country",
        True,
    ),
    Case(
        "eval split not a decimal",
        edit(FTJ, "spec.dataset.evalSplit", "ten percent"),
        "spec.dataset.evalSplit",
        True,
    ),
    Case("version zero", edit(MV, "spec.version", 0), "spec.version", True),
    Case(
        "unknown artifact format",
        edit(MV, "spec.artifact.format", "onnx"),
        "spec.artifact.format",
        True,
    ),
    Case("unknown stage", edit(MV, "spec.stage", "prod"), "spec.stage", True),
    Case(
        "digest not sha256",
        edit(MV, "spec.artifact.digest", "md5:abc"),
        "spec.artifact.digest",
        True,
    ),
    Case(
        "model cache not on a claim",
        edit(IDEP, "spec.modelCache", "s3://bucket/cache"),
        "spec.modelCache",
        True,
    ),
    Case("negative replicas", edit(IDEP, "spec.replicas", -1), "spec.replicas", True),
    Case("unknown dtype", edit(IDEP, "spec.engine.dtype", "int3"), "spec.engine.dtype", True),
    # Names and references the children would refuse (issue 8, item 5):
    Case(
        "FineTuneJob name with a dot (its ModelVersion qwen2.5-lora-v1 is not a label)",
        edit(edit(FTJ, "metadata.name", "qwen2.5-lora"), "spec.output", DELETE),
        "metadata.name",
        True,
    ),
    Case(
        "FineTuneJob name over 63 characters (not a label value)",
        edit(FTJ, "metadata.name", "j" * 64),
        "metadata.name",
        True,
    ),
    Case(
        "InferenceDeployment name with a leading digit (not a Service name)",
        edit(IDEP, "metadata.name", "2bot"),
        "metadata.name",
        True,
    ),
    Case(
        "InferenceDeployment name with a dot (not a Service name)",
        edit(IDEP, "metadata.name", "support.bot"),
        "metadata.name",
        True,
    ),
    Case(
        "ModelVersion version of 10 digits (its name could outgrow a label)",
        edit(edit(MV, "metadata.name", "m" * 50 + "-v1234567890"), "spec.version", 1234567890),
        "spec.version",
        True,
    ),
    Case(
        "claim name with capitals and underscore",
        edit(FTJ, "spec.dataset.uri", "pvc://My_Claim/d.jsonl"),
        "spec.dataset.uri",
        True,
    ),
    Case(
        "claim path leaving its claim with '..'",
        edit(FTJ, "spec.dataset.uri", "pvc://data/../other/d.jsonl"),
        "spec.dataset.uri",
        True,
    ),
    Case(
        "output claim name not a DNS subdomain",
        edit(FTJ, "spec.output.storage", "pvc://-artifacts"),
        "spec.output.storage",
        True,
    ),
    Case(
        "serving a ModelVersion name with a dot",
        edit(IDEP, "spec.modelVersion", "support.bot-v1"),
        "spec.modelVersion",
        True,
    ),
    # Values the pod would crash on, and what pydantic coerces but the server refuses (12, 13):
    Case(
        "GPU memory utilization above 1",
        edit(IDEP, "spec.engine.gpuMemoryUtilization", "5"),
        "spec.engine.gpuMemoryUtilization",
        True,
    ),
    Case(
        "GPU memory utilization zero",
        edit(IDEP, "spec.engine.gpuMemoryUtilization", "0"),
        "spec.engine.gpuMemoryUtilization",
        True,
    ),
    Case(
        "two adapters with the same name",
        edit(
            IDEP,
            "spec.adapters",
            [
                {"name": "tone", "modelVersion": "tone-v1"},
                {"name": "tone", "modelVersion": "tone-v2"},
            ],
        ),
        "spec.adapters",
        True,
    ),
    Case(
        "an integer given as a string",
        edit(FTJ, "spec.hyperparameters.epochs", "5"),
        "spec.hyperparameters.epochs",
        True,
    ),
    Case(
        "a boolean given as a string",
        edit(FTJ, "spec.dataset.packing", "yes"),
        "spec.dataset.packing",
        True,
    ),
    Case(
        "toleration operator not Exists or Equal",
        edit(FTJ, "spec.resources.tolerations", [{"key": "k", "operator": "Sometimes"}]),
        "spec.resources.tolerations",
        True,
    ),
    Case(
        "learning rate zero",
        edit(FTJ, "spec.hyperparameters.learningRate", "0"),
        "spec.hyperparameters.learningRate",
        True,
    ),
    Case(
        "dropout of 5",
        edit(FTJ, "spec.method.lora.dropout", "5"),
        "spec.method.lora.dropout",
        True,
    ),
    Case(
        "tensor parallel zero",
        edit(IDEP, "spec.engine.tensorParallelSize", 0),
        "spec.engine.tensorParallelSize",
        True,
    ),
    # CEL-only (Kubernetes >= 1.25) rules, also enforced by the models:
    Case(
        "two base-model sources at once",
        edit(FTJ, "spec.baseModel.uri", "pvc://c/base"),
        "spec.baseModel",
        False,
    ),
    Case(
        "adapter without base model",
        edit(edit(MV, "spec.artifact.format", "adapter"), "spec.artifact.baseModel", DELETE),
        "spec.artifact",
        False,
    ),
    Case(
        "ModelVersion name not <model>-v<N>",
        edit(MV, "metadata.name", "support-bot-latest"),
        "metadata.name",
        False,
    ),
    Case(
        "both a version and a followed stage",
        edit(IDEP, "spec.modelVersion", "support-bot-v1"),
        "spec",
        False,
    ),
    Case("model without stage", edit(IDEP, "spec.stage", DELETE), "spec", False),
    Case(
        "FineTuneJob name over 50 characters naming its model",
        edit(edit(FTJ, "metadata.name", "j" * 51), "spec.output", DELETE),
        "metadata.name",
        False,
    ),
    Case(
        "a scheduling window that ends before it starts",
        edit(
            FTJ,
            "spec.carbon.schedulingWindow",
            {"notBefore": "2026-01-02T00:00:00Z", "notAfter": "2026-01-01T00:00:00Z"},
        ),
        "spec.carbon.schedulingWindow",
        False,
    ),
    Case(
        "a pause threshold below the start threshold",
        edit(
            edit(FTJ, "spec.carbon.maxGridIntensity", 200),
            "spec.carbon.pauseAboveGridIntensity",
            100,
        ),
        "spec.carbon",
        False,
    ),
    Case(
        "dynamic adapters without an API key",
        edit(edit(IDEP, "spec.dynamicAdapters", True), "spec.apiKeySecret", DELETE),
        "spec",
        False,
    ),
    Case(
        "a network peer with no selector",
        edit(IDEP, "spec.networkPolicy", {"allowFrom": [{}]}),
        "spec.networkPolicy.allowFrom",
        False,
    ),
]
