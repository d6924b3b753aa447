"""The documents of the tasks run on a ModelVersion's artifact: ``mg export`` and ``mg eval``.

As with the trainer (:mod:`.contracts`), the CLI resolves everything first (paths on this
machine, the base of an adapter) and runs a program in the ML runtime with ``--config FILE``:
``python -m model_garden.export`` or ``python -m model_garden.evaluation``. The program writes
its result document as JSON (``export.json`` in the output folder, ``eval.json`` beside the
artifact) and prints it as its last line.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from pydantic import Field

from .common import ApiModel, CarbonReport
from .contracts import Outcome, read_document
from .modelversion import Evaluation

EXPORT_RESULT_FILE = "export.json"
EVAL_RESULT_FILE = "eval.json"
EXIT_INVALID_CONFIG = 2
"""The config file cannot be read: the same code as the trainer's (``training/exits.py``)."""
SAMPLE_CHARS = 2000
"""Longest generation kept per prompt: a report stays readable (and small)."""


class ExportFormat(StrEnum):
    MERGED = "merged"
    GGUF_F16 = "gguf-f16"
    GGUF_Q8_0 = "gguf-q8_0"


class VersionArtifact(ApiModel):
    """A ModelVersion's weights as paths of this machine: what both tasks load."""

    model_version: str = Field(description="ModelVersion name, e.g. pets-v1.")
    path: str = Field(description="The artifact folder (adapter, merged or full model).")
    adapter: bool = Field(description="True when the artifact is a LoRA adapter.")
    base_model: str | None = Field(
        default=None, description="For an adapter: its base model (a folder or a hub id)."
    )
    base_model_revision: str | None = Field(default=None, description="Hub revision of the base.")


class ExportConfig(ApiModel):
    """``python -m model_garden.export --config FILE``."""

    artifact: VersionArtifact
    format: ExportFormat = ExportFormat.MERGED
    out_dir: str = Field(description="Where the exported model goes (created; must be empty).")
    country: str = Field(default="USA", description="ISO alpha-3 country of the grid.")
    region: str | None = None
    evaluation: Evaluation | None = Field(
        default=None, description="The version's latest evaluation, for the exported card."
    )
    converter: str | None = Field(
        default=None, description="llama.cpp's convert_hf_to_gguf.py (GGUF formats only)."
    )


class ExportResult(ApiModel):
    """What an export made (``export.json`` in the output folder)."""

    outcome: Outcome
    reason: str = ""
    message: str = Field(default="", max_length=1500)
    model_version: str
    format: ExportFormat = ExportFormat.MERGED
    out_dir: str
    how: str = Field(default="", description="merged (adapter + base) or copied (merged/full).")
    files: list[str] = Field(default_factory=list)
    size_bytes: int = Field(default=0, ge=0)
    digest: str | None = Field(default=None, description="sha256 over the exported files.")
    notes: list[str] = Field(default_factory=list, description="What a person should know.")
    carbon: CarbonReport = Field(default_factory=CarbonReport)
    duration_seconds: float = 0.0


class EvalConfig(ApiModel):
    """``python -m model_garden.evaluation --config FILE``."""

    artifact: VersionArtifact
    dataset_path: str = Field(description="The held-out dataset (a file of this machine).")
    dataset_uri: str = Field(description="The dataset as the user named it (for the report).")
    dataset_format: str = "auto"
    chat_template: str | None = None
    max_seq_length: int = Field(default=2048, ge=16)
    batch_size: int = Field(default=8, ge=1)
    max_examples: int | None = Field(default=None, ge=1, description="Evaluate the first N only.")
    prompts: list[str] = Field(default_factory=list, description="Prompts for sample generations.")
    max_new_tokens: int = Field(default=64, ge=1, le=4096)
    result_path: str = Field(description="Where eval.json goes.")
    country: str = "USA"
    region: str | None = None


class EvalSample(ApiModel):
    prompt: str
    completion: str = Field(max_length=SAMPLE_CHARS)


class EvalResult(ApiModel):
    """What an evaluation measured (``eval.json`` beside the artifact)."""

    outcome: Outcome
    reason: str = ""
    message: str = Field(default="", max_length=1500)
    model_version: str
    dataset: str
    examples: int = Field(default=0, ge=0, description="Examples scored (after tokenizing).")
    tokens: int = Field(default=0, ge=0, description="Tokens that carried loss.")
    loss: float | None = Field(default=None, description="Mean token cross-entropy, nats.")
    perplexity: float | None = Field(default=None, description="exp(loss).")
    truncated: int = 0
    dropped: int = 0
    samples: list[EvalSample] = Field(default_factory=list)
    carbon: CarbonReport = Field(default_factory=CarbonReport)
    duration_seconds: float = 0.0
    evaluated_at: str | None = None


C = TypeVar("C", bound=ApiModel)


def program_main(
    prog: str,
    doc: str | None,
    config_model: type[C],
    run: Callable[[C], tuple[ApiModel, int]],
    argv: list[str] | None = None,
) -> int:
    """``python -m PROG --config FILE`` (or ``--config-env NAME``: the document in an
    environment variable, how a cluster Job passes it): read the config document, run, print the
    result document as the last stdout line (what the CLI reads) and return the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help=f"{config_model.__name__} JSON file")
    source.add_argument("--config-env", help="environment variable holding the JSON")
    args = parser.parse_args(argv)
    where = args.config or f"${args.config_env}"
    try:
        if args.config:
            config = read_document(config_model, args.config)
        else:
            config = config_model.model_validate_json(os.environ.get(args.config_env, ""))
    except (OSError, ValueError) as exc:
        print(f"{where}: {exc}", file=sys.stderr)
        return EXIT_INVALID_CONFIG
    result, code = run(config)
    print(result.model_dump_json(by_alias=True, exclude_none=True), flush=True)
    return code
