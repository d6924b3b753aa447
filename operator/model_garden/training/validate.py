"""Dataset report as JSON, with token statistics when a model's tokenizer is given.

``python -m model_garden.training.validate FILE [--format F] [--model DIR] [--max-seq-length N]
[--chat-template NAME]``: the same checks the trainer runs first; the CLI's ``dataset validate``
runs this in the ML runtime for the token part (it needs the tokenizer).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .datasets import DatasetError, load_dataset_file


def report_dict(
    path: str,
    fmt: str = "auto",
    model: str | None = None,
    max_seq_length: int = 2048,
    chat_template: str | None = None,
    completion_only: bool = True,
) -> dict[str, Any]:
    try:
        report = load_dataset_file(path, fmt)
    except DatasetError as exc:
        return {
            "file": path,
            "ok": False,
            "errors": [str(exc)],
            "errorCount": 1,
            "lines": [str(exc)],
        }
    out: dict[str, Any] = {
        **report.summary(),
        "ok": report.ok,
        "errors": [str(e) for e in report.errors],
        "errorCount": report.error_count,
        "lines": report.lines(),
    }
    if model and report.examples:
        from transformers import AutoTokenizer

        from .tokenize import resolve_template, tokenize_examples

        tokenizer = AutoTokenizer.from_pretrained(model)
        template, source = resolve_template(tokenizer, chat_template)
        tok = tokenize_examples(
            report.examples, tokenizer, max_seq_length, template, completion_only
        )
        out["tokens"] = {**tok.stats(), "maxSeqLength": max_seq_length, "template": source}
        out["truncatedLines"] = tok.truncated_lines
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_garden.training.validate")
    parser.add_argument("file")
    parser.add_argument("--format", default="auto")
    parser.add_argument("--model")
    parser.add_argument("--max-seq-length", type=int, default=2048)
    parser.add_argument("--chat-template")
    args = parser.parse_args(argv)
    out = report_dict(args.file, args.format, args.model, args.max_seq_length, args.chat_template)
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
