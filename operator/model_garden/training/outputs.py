"""Artifact digests, the model card, and the result document (pure; no torch).

The digest of an artifact folder is defined once, in ``model_garden.api.digest``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from model_garden.api.common import CarbonReport
from model_garden.api.contracts import (
    ArtifactFile,
    ArtifactKind,
    Outcome,
    TrainingEvaluation,
    TrainingMetrics,
    TrainingResult,
    write_document,
)
from model_garden.api.digest import artifact_digest

RESULT_FILE = "training-result.json"


def folder_digest(folder: Path) -> tuple[str, int]:
    """(``sha256:<hex>`` of the manifest, total bytes): the digest the operator checks."""
    found = artifact_digest(folder)
    return found.digest, found.size_bytes


def artifact(
    kind: ArtifactKind, folder: Path, base_uri: str | None, output_dir: Path
) -> ArtifactFile:
    digest, size = folder_digest(folder)
    uri = None
    if base_uri:
        uri = base_uri.rstrip("/") + "/" + folder.relative_to(output_dir).as_posix()
    return ArtifactFile(kind=kind, path=str(folder), uri=uri, size_bytes=size, digest=digest)


def model_card(
    name: str,
    base_model: str,
    kind: ArtifactKind,
    method: str,
    backend: str,
    dataset: str,
    metrics: TrainingMetrics,
    carbon: CarbonReport,
    hardware: str,
    evaluation: TrainingEvaluation | None = None,
) -> str:
    """README.md with Hugging Face metadata, including ``co2_eq_emissions`` (grams), and the
    end-of-training evaluation when the job asked for one."""
    location = carbon.country or "unknown"
    if carbon.region:
        location = f"{location}/{carbon.region}"
    meta: dict[str, Any] = {
        "base_model": base_model,
        "library_name": "peft" if kind == ArtifactKind.ADAPTER else "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["model-garden", method, "generated_from_trainer"],
        "co2_eq_emissions": {
            # the run's figure as is: rounding would turn a short run into 0 g and part
            # the card from the TrainingResult it must equal
            "emissions": carbon.emissions_kg * 1000.0,
            "source": f"CodeCarbon ({carbon.method})",
            "training_type": "fine-tuning",
            "geographical_location": location,
            "hardware_used": hardware,
        },
        "model-index": [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": "text-generation"},
                        "metrics": [
                            {"type": "loss", "name": "eval loss", "value": metrics.eval_loss}
                        ],
                    }
                ],
            }
        ],
    }
    body = [
        f"# {name}",
        "",
        f"A {method} fine-tune of `{base_model}` ({kind.value}), trained by Model Garden with the "
        f"`{backend}` backend on `{dataset}`.",
        "",
        "## Training metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key, value in metrics.model_dump(exclude_none=True).items():
        body.append(f"| {key} | {value} |")
    body += [
        "",
        "## Carbon",
        "",
        f"Energy {carbon.energy_kwh:.6g} kWh (CPU {carbon.cpu_energy_kwh:.6g}, GPU "
        f"{carbon.gpu_energy_kwh:.6g}, RAM {carbon.ram_energy_kwh:.6g}), emissions "
        f"{carbon.emissions_kg * 1000:.6g} g CO2e at {carbon.grid_intensity_g_per_kwh} g/kWh "
        f"({location}). Figures are **{carbon.method}** "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(carbon.component_methods.items()))}).",
        "",
    ]
    if evaluation is not None:
        body += evaluation_section(evaluation)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(body)


def evaluation_section(evaluation: TrainingEvaluation) -> list[str]:
    """The card's "Evaluation" section: figures, then each prompt and its greedy sample."""
    lines = ["## Evaluation", "", f"On `{evaluation.dataset}` at the end of training:", ""]
    if evaluation.loss is not None and evaluation.perplexity is not None:
        lines += [
            "| metric | value |",
            "|---|---|",
            f"| loss | {evaluation.loss:.4g} |",
            f"| perplexity | {evaluation.perplexity:.4g} |",
            f"| examples | {evaluation.examples} |",
            f"| tokens | {evaluation.tokens} |",
            "",
        ]
    else:
        lines += ["No held-out example to score (evalSplit is 0 and no dataset was given).", ""]
    for sample in evaluation.samples:
        lines += [
            f"**Prompt:** {sample.prompt}",
            "",
            "```text",
            sample.completion.replace("```", "`\u200b``"),
            "```",
            "",
        ]
    if evaluation.samples:
        lines += ["Samples are greedy; the full report is `eval.json`.", ""]
    return lines


def write_result(
    result: TrainingResult, termination_path: str | None, output_dir: str | Path | None
) -> str:
    """Write the result to the termination-message path (< 4 KB) and the output dir."""
    message = result.to_termination_message()
    if output_dir:
        try:
            write_document(result, Path(output_dir) / RESULT_FILE)
        except OSError:
            pass  # the termination message below is what the operator reads
    if termination_path:
        try:
            target = Path(termination_path)
            if target.parent.exists():
                target.write_text(message, encoding="utf-8")
        except OSError:
            pass
    return message


def failure(reason: str, message: str, **fields: Any) -> TrainingResult:
    return TrainingResult(outcome=Outcome.FAILED, reason=reason, message=message[:1500], **fields)
