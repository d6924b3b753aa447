"""``model-garden dataset validate|preview|stats|convert``: the trainer's dataset checks and
formats, from a terminal.

Row checks run here (pure Python); token statistics need the model's tokenizer, so ``stats`` (and
``validate --model``) compute the same report in the ML runtime (MODEL_GARDEN_RUNTIME_PYTHON).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from model_garden.runtime import RuntimeMissing, runtime_env, runtime_python
from model_garden.training.datasets import FORMATS
from model_garden.training.validate import report_dict

from .errors import CliError, InvalidInput
from .output import OUTPUT_OPTION, emit

FORMAT_CHOICE = click.Choice(["auto", *FORMATS])


@click.group()
def dataset() -> None:
    """Training datasets: validate, preview, token statistics, convert between formats.

    \b
    Example:
      mg dataset validate pets.jsonl --format alpaca
      mg dataset convert pets.jsonl pets-chat.jsonl --to chat --eval-split 0.1
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
        raise CliError(str(exc)) from exc
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
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CliError(f"validation failed to run in the ML runtime: {tail}") from exc
    return report


@dataset.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=FORMAT_CHOICE,
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


def _load(file: Path, fmt: str) -> Any:
    """The trainer's reading and validation of FILE (a report, errors located)."""
    from model_garden.training.datasets import DatasetError, load_dataset_file

    try:
        return load_dataset_file(file, fmt)
    except DatasetError as exc:
        raise InvalidInput(str(exc)) from exc
    except ImportError as exc:  # parquet / datasets folders need pyarrow (the ML runtime's)
        raise InvalidInput(
            f"{file}: reading it needs {exc.name}, which the CLI does not install: "
            "use jsonl, json or csv (`mg dataset stats` reads it in the ML runtime)"
        ) from exc


def _example_doc(example: Any) -> dict[str, Any]:
    if example.is_chat:
        return {
            "line": example.line,
            "messages": [{"role": m.role, "content": m.content} for m in example.messages],
        }
    return {
        "line": example.line,
        "segments": [{"text": s.text, "train": s.train} for s in example.segments],
    }


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@dataset.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("-n", "--rows", "count", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="auto", show_default=True)
@click.option("--width", type=click.IntRange(min=20), default=60, show_default=True)
@OUTPUT_OPTION
def preview(file: Path, count: int, fmt: str, width: int, output: str) -> None:
    """Show the first rows of FILE as the trainer reads them, and the format detected.

    Chat rows show their messages; completion and text rows their segments (trained on or
    not). Invalid rows are counted (`mg dataset validate` names them).

    \b
    Example:
      mg dataset preview pets.jsonl -n 3
    """
    report = _load(file, fmt)
    shown = report.examples[:count]
    how = "detected" if report.detected else "given"
    if output != "table":
        doc = {**report.summary(), "preview": [_example_doc(e) for e in shown]}
        emit(doc, output, [])
    else:
        click.echo(
            f"{file}: {report.rows} rows, format {report.format} ({how}), showing {len(shown)}"
        )

        def parts(example: Any) -> str:
            if example.is_chat:
                return " | ".join(f"{m.role}: {_short(m.content, width)}" for m in example.messages)
            return " | ".join(
                f"{'trained' if s.train else 'prompt'}: {_short(s.text, width)}"
                for s in example.segments
            )

        emit(shown, "table", [("LINE", lambda e: e.line), ("ROW", parts)])
    if not report.ok:
        click.echo(f"{report.error_count} invalid rows: mg dataset validate {file}", err=True)


@dataset.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--model",
    type=click.Path(exists=True),
    required=True,
    help="Model dir whose tokenizer counts the tokens.",
)
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="auto", show_default=True)
@click.option("--max-seq-length", type=click.IntRange(min=16), default=2048, show_default=True)
@click.option("--chat-template", help="Named template (chatml, llama3, …); default: the model's.")
@OUTPUT_OPTION
def stats(
    file: Path, model: str, fmt: str, max_seq_length: int, chat_template: str | None, output: str
) -> None:
    """Rows and token statistics of FILE with a model's tokenizer, as the trainer counts them.

    Tokens per example (min / mean / p95 / max) after the chat template, and how many
    examples --max-seq-length truncates. Runs in the ML runtime (the tokenizer).

    \b
    Example:
      mg dataset stats pets.jsonl --model ./tiny-llama --max-seq-length 128
    """
    report = _in_runtime(file, fmt, model, max_seq_length, chat_template)
    if not report.get("ok"):
        first = (report.get("errors") or ["invalid rows"])[0]
        raise InvalidInput(
            f"{report.get('errorCount', 1)} invalid rows, first: {first} (mg dataset validate {file})"
        )
    tokens = report.get("tokens") or {}
    truncated_lines = [int(n) for n in report.get("truncatedLines") or []]
    doc: dict[str, Any] = {
        "file": str(file),
        "format": report.get("format"),
        "rows": report.get("rows"),
        "examples": tokens.get("examples"),
        "template": tokens.get("template"),
        "maxSeqLength": max_seq_length,
        "tokens": tokens.get("tokens"),
        "trainableTokens": tokens.get("trainableTokens"),
        "minTokens": tokens.get("minTokens"),
        "meanTokens": tokens.get("meanTokens"),
        "p95Tokens": tokens.get("p95Tokens"),
        "maxTokens": tokens.get("maxTokens"),
        "truncated": tokens.get("truncated"),
        "dropped": tokens.get("dropped"),
        "truncatedLines": truncated_lines,
    }
    if output != "table":
        emit(doc, output, [])
        return
    from .output import details

    details(
        [
            ("file", doc["file"]),
            ("format", doc["format"]),
            ("rows", doc["rows"]),
            ("template", doc["template"]),
            ("tokens", f"{doc['tokens']} ({doc['trainableTokens']} trained on)"),
            (
                "per example",
                f"min {doc['minTokens']} / mean {doc['meanTokens']} / p95 {doc['p95Tokens']}"
                f" / max {doc['maxTokens']}",
            ),
            (f"truncated at {max_seq_length}", doc["truncated"]),
            ("dropped", doc["dropped"]),
            ("truncated rows (first)", ", ".join(str(n) for n in truncated_lines) or None),
        ]
    )


def _write_jsonl(rows: list[dict[str, Any]], target: Path) -> Path:
    """Write to a temporary file next to ``target``; the caller renames it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return Path(tmp)


@dataset.command()
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "target", type=click.Choice(FORMATS), required=True, help="Output format.")
@click.option("--format", "fmt", type=FORMAT_CHOICE, default="auto", show_default=True)
@click.option("--eval-split", type=click.FloatRange(0, 1, max_open=True), default=0.0)
@click.option(
    "--eval-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Eval rows [default: OUT's name + -eval].",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Seed of the split.")
def convert(
    file: Path,
    out: Path,
    target: str,
    fmt: str,
    eval_split: float,
    eval_out: Path | None,
    seed: int,
) -> None:
    """Convert FILE to OUT (jsonl) in another format: alpaca, chat, completion or text.

    Every row is validated first (bad rows are named by line, and nothing is written), and
    every converted row is checked as the trainer will read it. A conversation of several turns
    cannot be alpaca or completion, nor raw text chat. --eval-split holds out a share of the
    rows (the trainer's deterministic split) in a second file.

    \b
    Example:
      mg dataset convert pets.jsonl pets-chat.jsonl --to chat
      mg dataset convert pets.jsonl train.jsonl --to chat --eval-split 0.1 --eval-out eval.jsonl
    """
    from model_garden.training.datasets import split_eval

    from .dataset_convert import convert as convert_rows

    report = _load(file, fmt)
    if not report.ok:
        first = "; ".join(str(e) for e in report.errors[:3])
        raise InvalidInput(f"{report.error_count} invalid rows, nothing written: {first}")
    rows, problems = convert_rows(report.examples, target)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise InvalidInput(
            f"{file}: {len(problems)} rows cannot be {target}, nothing written: "
            f"{'; '.join(problems[:3])}{more}"
        )
    outputs = [(out, rows)]
    if eval_split > 0:
        train_idx, eval_idx = split_eval(len(rows), eval_split, seed)
        eval_out = eval_out or out.with_name(f"{out.stem}-eval{out.suffix or '.jsonl'}")
        if eval_out.resolve() == out.resolve():
            raise InvalidInput("--eval-out must differ from OUT")
        outputs = [(out, [rows[i] for i in train_idx]), (eval_out, [rows[i] for i in eval_idx])]
    temps = []
    try:
        for path, chunk in outputs:
            temps.append((_write_jsonl(chunk, path), path))
    except OSError as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise CliError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    for tmp, path in temps:
        tmp.replace(path)
    how = "detected" if report.detected else "given"
    for path, chunk in outputs:
        click.echo(f"wrote {path}: {len(chunk)} rows ({report.format} ({how}) → {target})")
