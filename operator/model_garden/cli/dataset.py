"""``model-garden dataset validate FILE``: the trainer's dataset checks, plus token statistics.

Row checks run here (pure Python); token statistics need the model's tokenizer, so with
``--model`` the same report is computed in the ML runtime (MODEL_GARDEN_RUNTIME_PYTHON).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from model_garden.api.finetunejob import DatasetFormat
from model_garden.runtime import RuntimeMissing, runtime_env, runtime_python
from model_garden.training.validate import report_dict


@click.group()
def dataset() -> None:
    """Check training datasets.

    \b
    Example:
      mg dataset validate pets.jsonl --format alpaca
    """


def _print(report: dict[str, Any]) -> None:
    for line in report.get("lines", []):
        click.echo(line)
    tokens = report.get("tokens")
    if tokens:
        click.echo(
            "tokens ({template} template, max {maxSeqLength}): {examples} examples, "
            "{tokens} tokens ({trainableTokens} trained on), per example min {minTokens} / "
            "mean {meanTokens} / p95 {p95Tokens} / max {maxTokens}; {truncated} truncated, "
            "{dropped} dropped".format(**{"tokens": 0, "trainableTokens": 0, **tokens})
        )
        if report.get("truncatedLines"):
            click.echo(f"truncated rows (first): {report['truncatedLines']}")


def _in_runtime(
    file: Path, fmt: str, model: str | None, max_seq_length: int, chat_template: str | None
) -> dict[str, Any]:
    try:
        python = runtime_python()
    except RuntimeMissing as exc:
        raise click.ClickException(str(exc)) from exc
    args = [python, "-m", "model_garden.training.validate", str(file), "--format", fmt]
    args += ["--max-seq-length", str(max_seq_length)]
    if model:
        args += ["--model", str(model)]
    if chat_template:
        args += ["--chat-template", chat_template]
    proc = subprocess.run(args, env=runtime_env(), capture_output=True, text=True)
    try:
        report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError) as exc:
        raise click.ClickException(f"validation failed to run: {proc.stderr[-2000:]}") from exc
    return report


@dataset.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in DatasetFormat]),
    default="auto",
    show_default=True,
)
@click.option("--model", type=click.Path(exists=True), help="Model dir: adds token statistics.")
@click.option("--max-seq-length", type=int, default=2048, show_default=True)
@click.option("--chat-template", help="Named template (chatml, llama3, …); default: the model's.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate(
    file: Path,
    fmt: str,
    model: str | None,
    max_seq_length: int,
    chat_template: str | None,
    as_json: bool,
) -> None:
    """Validate FILE (jsonl, json, csv, parquet or a saved datasets folder).

    \b
    Example:
      mg dataset validate pets.jsonl --model ./tiny-llama --max-seq-length 128
    """
    if model:
        report = _in_runtime(file, fmt, model, max_seq_length, chat_template)
    else:
        try:
            report = report_dict(str(file), fmt, None, max_seq_length, chat_template)
        except ImportError:  # parquet / datasets folders: the runtime has pyarrow and datasets
            report = _in_runtime(file, fmt, None, max_seq_length, chat_template)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print(report)
    if not report.get("ok"):
        sys.exit(1)
