"""One export: a ModelVersion's weights → a standalone model folder, carbon-tracked.

An adapter is merged into its base (the trainer's own merge, full precision) and saved as
safetensors with the artifact's tokenizer; a merged or full version is copied. A GGUF format
converts that folder (or the version's own) with llama.cpp's converter (:mod:`.gguf`). The run is
metered like training (the same CodeCarbon tracker), and its result, carbon included, is
written as ``export.json`` in the output folder and printed as the last line of stdout.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from model_garden.api.common import CarbonReport
from model_garden.api.contracts import Outcome, write_document
from model_garden.api.digest import artifact_digest
from model_garden.api.modelversion import evaluation_card_lines
from model_garden.api.offline import (
    EXPORT_RESULT_FILE,
    ExportConfig,
    ExportFormat,
    ExportResult,
    program_main,
)
from model_garden.carbon.tracker import TrainingCarbonTracker

from .gguf import OUTTYPES, convert

EXIT_FAILED = 1
CARD = "README.md"


def export_card(original: str | None, config: ExportConfig, how: str, carbon: CarbonReport) -> str:
    """The version's model card (the trainer's README.md) for the exported folder: a merged
    model is a plain transformers model, and the card says how it was made and what that cost."""
    meta: dict[str, Any] = {}
    body = f"# {config.artifact.model_version}\n"
    if original and original.startswith("---\n"):
        front, _, rest = original[4:].partition("\n---\n")
        meta = yaml.safe_load(front) or {}
        body = rest.lstrip("\n")
    elif original:
        body = original
    if config.format == ExportFormat.MERGED:
        meta["library_name"] = "transformers"
    else:  # a llama.cpp file, not a transformers folder
        meta.pop("library_name", None)
        meta["tags"] = [*(meta.get("tags") or []), "gguf"]
    where = carbon.country or "unknown"
    if carbon.region:
        where = f"{where}/{carbon.region}"
    source = {
        "merged": f"the adapter merged into `{config.artifact.base_model}`",
        "copied": "the version's weights, copied",
        "converted": "the version's weights, converted",
    }[how]
    what = "safetensors" if config.format == ExportFormat.MERGED else f"`{gguf_name(config)}`"
    lines = [
        body.rstrip("\n"),
        "",
        "## Export",
        "",
        f"Exported by Model Garden from ModelVersion `{config.artifact.model_version}` as "
        f"{config.format} ({what}): {source}. Energy {carbon.energy_kwh:.6g} kWh, emissions "
        f"{carbon.emissions_kg * 1000:.6g} g CO2e at {carbon.grid_intensity_g_per_kwh} g/kWh "
        f"({where}), **{carbon.method}**.",
        "",
    ]
    if config.evaluation is not None:
        lines += evaluation_card_lines(config.evaluation)
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n" + "\n".join(lines)


def _weights(config: ExportConfig, out: Path) -> str:
    """Write the version as a transformers folder into ``out``: merged, or copied."""
    artifact = config.artifact
    if artifact.adapter:
        from model_garden.training.merge import merge_adapter

        from .load import base_kwargs, load_tokenizer

        if not artifact.base_model:
            raise ValueError(f"{artifact.model_version}: an adapter without a base model")
        merge_adapter(artifact.base_model, Path(artifact.path), out, "cpu", base_kwargs(artifact))
        load_tokenizer(artifact).save_pretrained(out)
        return "merged"
    shutil.copytree(artifact.path, out, dirs_exist_ok=True)
    return "copied"


def gguf_name(config: ExportConfig) -> str:
    """``pets-v1-q8_0.gguf``."""
    return f"{config.artifact.model_version}-{OUTTYPES[config.format]}.gguf"


def export(config: ExportConfig) -> tuple[str, list[str]]:
    """Write the export into ``out_dir``: (how it was made, notes for a person)."""
    out = Path(config.out_dir)
    if config.format == ExportFormat.MERGED:
        return _weights(config, out), []
    if not config.converter:
        raise ValueError("a GGUF export needs llama.cpp's converter (ExportConfig.converter)")
    source = Path(config.artifact.path)
    with tempfile.TemporaryDirectory(prefix=".merge-", dir=out) as tmp:
        how = "merged" if config.artifact.adapter else "converted"
        if config.artifact.adapter:  # the converter reads one folder: merge it first
            source = Path(tmp)
            _weights(config, source)
        notes = convert(config.converter, source, out / gguf_name(config), config.format)
    return how, notes


def run(config: ExportConfig) -> tuple[ExportResult, int]:
    started = time.monotonic()
    out = Path(config.out_dir)
    carbon = TrainingCarbonTracker(config.country, config.region, project="model-garden-export")
    result = ExportResult(
        outcome=Outcome.FAILED,
        model_version=config.artifact.model_version,
        format=config.format,
        out_dir=str(out),
    )
    code = EXIT_FAILED
    try:
        carbon.start()
        out.mkdir(parents=True, exist_ok=True)
        original = Path(config.artifact.path) / CARD
        card = original.read_text(encoding="utf-8") if original.is_file() else None
        how, result.notes = export(config)
        result.carbon = carbon.stop()  # weights written: the figure the card states
        (out / CARD).write_text(export_card(card, config, how, result.carbon), encoding="utf-8")
        found = artifact_digest(out)
        result.how = how
        result.files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
        result.size_bytes, result.digest = found.size_bytes, found.digest
        result.outcome, result.reason, code = Outcome.SUCCEEDED, "Exported", 0
    except Exception as exc:  # the result says why, whatever failed
        result.reason, result.message = "ExportFailed", f"{type(exc).__name__}: {exc}"[:1500]
        result.carbon = carbon.stop()
    result.duration_seconds = round(time.monotonic() - started, 3)
    if out.is_dir():
        write_document(result, out / EXPORT_RESULT_FILE)
    return result, code


def main(argv: list[str] | None = None) -> int:
    return program_main("model_garden.export", __doc__, ExportConfig, run, argv)
