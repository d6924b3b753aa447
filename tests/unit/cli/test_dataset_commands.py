"""``mg dataset preview|stats|convert``: the trainer's reading of a file, shown and converted
(token statistics for real are in tests/ml/test_cli_dataset.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from model_garden.training.datasets import load_dataset_file

from .conftest import Env, one_line_error

ALPACA = [
    {"instruction": "Describe the pet.", "input": "a red cat", "output": "The cat is red."},
    {"instruction": "Name it.", "output": "Tom.", "system": "Be brief."},
    {"instruction": "Describe the pet.", "input": "", "output": "A dog."},
    {"instruction": "Colour?", "output": "Blue."},
]
CHAT_TURNS = {
    "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "and?"},
        {"role": "assistant", "content": "bye"},
    ]
}


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_preview_shows_rows_as_the_trainer_reads_them(env: Env, tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "pets.jsonl", ALPACA)
    table = env.run("dataset", "preview", str(data), "-n", "2")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0] == f"{data}: 4 rows, format alpaca (detected), showing 2"
    assert "user: Describe the pet. a red cat | assistant: The cat is red." in table.stdout
    assert "system: Be brief. | user: Name it." in table.stdout
    doc = json.loads(env.run("dataset", "preview", str(data), "-n", "1", "-o", "json").stdout)
    assert (doc["format"], doc["formatSource"], doc["rows"], doc["valid"]) == (
        "alpaca", "detected", 4, 4
    )  # fmt: skip
    assert doc["preview"] == [
        {
            "line": 1,
            "messages": [
                {"role": "user", "content": "Describe the pet.\n\na red cat"},
                {"role": "assistant", "content": "The cat is red."},
            ],
        }
    ]
    as_yaml = env.run("dataset", "preview", str(data), "-n", "1", "-o", "yaml").stdout
    assert yaml.safe_load(as_yaml) == doc
    text = _jsonl(tmp_path / "t.jsonl", [{"prompt": "Q:", "completion": " A"}])
    shown = env.run("dataset", "preview", str(text)).stdout
    assert "prompt: Q: | trained: A" in shown


def test_preview_counts_bad_rows_and_names_a_missing_file(env: Env, tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "pets.jsonl", [*ALPACA, {"instruction": "x"}])
    result = env.run("dataset", "preview", str(data))
    assert result.exit_code == 0
    assert "1 invalid rows: mg dataset validate" in result.stderr
    missing = env.run("dataset", "preview", str(tmp_path / "none.jsonl"))
    assert missing.exit_code == 2 and "does not exist" in one_line_error(missing)
    odd = tmp_path / "pets.txt"
    odd.write_text("x")
    wrong = env.run("dataset", "preview", str(odd))
    assert wrong.exit_code == 2 and "unknown file type '.txt'" in one_line_error(wrong)


@pytest.mark.parametrize(
    ("to", "first"),
    [
        ("chat", {"messages": [
            {"role": "user", "content": "Describe the pet.\n\na red cat"},
            {"role": "assistant", "content": "The cat is red."},
        ]}),
        ("alpaca", {"instruction": "Describe the pet.\n\na red cat", "input": "", "output": "The cat is red."}),
        ("completion", {"prompt": "Describe the pet.\n\na red cat", "completion": "The cat is red."}),
        ("text", {"text": "Describe the pet.\n\na red cat\n\nThe cat is red."}),
    ],
)  # fmt: skip
def test_convert_alpaca_to_each_format_reads_back_as_that_format(
    env: Env, tmp_path: Path, to: str, first: dict[str, Any]
) -> None:
    data = _jsonl(tmp_path / "pets.jsonl", ALPACA)
    out = tmp_path / f"pets-{to}.jsonl"
    result = env.run("dataset", "convert", str(data), str(out), "--to", to)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out}: 4 rows (alpaca (detected) → {to})"
    assert _rows(out)[0] == first
    back = load_dataset_file(out)  # the trainer detects and accepts what was written
    assert (back.format, back.ok, len(back.examples)) == (to, True, 4)
    if to == "chat":
        assert _rows(out)[1]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_convert_round_trips_and_splits_eval_deterministically(env: Env, tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "pets.jsonl", ALPACA)
    chat = tmp_path / "chat.jsonl"
    assert env.run("dataset", "convert", str(data), str(chat), "--to", "chat").exit_code == 0
    again = tmp_path / "again.jsonl"
    assert env.run("dataset", "convert", str(chat), str(again), "--to", "alpaca").exit_code == 0
    assert load_dataset_file(again).examples == load_dataset_file(data).examples

    train = tmp_path / "split" / "train.jsonl"
    split = env.run(
        "dataset", "convert", str(data), str(train), "--to", "chat", "--eval-split", "0.25"
    )
    assert split.exit_code == 0, split.output
    held = tmp_path / "split" / "train-eval.jsonl"
    assert f"wrote {train}: 3 rows" in split.stdout and f"wrote {held}: 1 rows" in split.stdout
    everything = _rows(chat)
    assert sorted(map(json.dumps, _rows(train) + _rows(held))) == sorted(
        map(json.dumps, everything)
    )
    named = tmp_path / "e.jsonl"
    twice = env.run(
        "dataset", "convert", str(data), str(tmp_path / "t2.jsonl"), "--to", "chat",
        "--eval-split", "0.25", "--eval-out", str(named),
    )  # fmt: skip
    assert twice.exit_code == 0 and _rows(named) == _rows(held)  # the same seed, the same split
    assert sorted(p.name for p in (tmp_path / "split").iterdir()) == [
        "train-eval.jsonl",
        "train.jsonl",
    ]


def test_bad_rows_are_named_and_nothing_is_written(env: Env, tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "pets.jsonl", [ALPACA[0], {"instruction": "x"}, ALPACA[1]])
    out = tmp_path / "out.jsonl"
    out.write_text("kept\n")
    bad = env.run("dataset", "convert", str(data), str(out), "--to", "chat")
    assert bad.exit_code == 2
    line = one_line_error(bad)
    assert "1 invalid rows, nothing written" in line and "line 2: field 'output': missing" in line
    assert out.read_text() == "kept\n"

    one_turn = {"messages": CHAT_TURNS["messages"][:2]}
    turns = _jsonl(tmp_path / "turns.jsonl", [one_turn, CHAT_TURNS])
    refused = env.run("dataset", "convert", str(turns), str(out), "--to", "alpaca")
    assert refused.exit_code == 2
    assert (
        "1 rows cannot be alpaca, nothing written: line 2: a conversation of 4 messages"
        " (user, assistant, user, assistant) cannot be alpaca" in one_line_error(refused)
    )
    text = _jsonl(tmp_path / "text.jsonl", [{"text": "just words"}])
    no_answer = env.run("dataset", "convert", str(text), str(out), "--to", "chat")
    assert no_answer.exit_code == 2
    assert "line 1: text has no prompt and answer: cannot be chat" in one_line_error(no_answer)
    assert out.read_text() == "kept\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "no temporary file left"
    same = env.run(
        "dataset", "convert", str(data), str(out), "--to", "chat", "--eval-split", "0.5",
        "--eval-out", str(out),
    )  # fmt: skip
    assert same.exit_code == 2
    assert env.run("dataset", "convert", str(data), str(out), "--to", "sharegpt").exit_code == 2


def _canned_runtime(folder: Path, report: dict[str, Any]) -> Path:
    """A "runtime Python" that prints the validation report it was given (no tokenizer here)."""
    script = folder / "canned-python"
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"print(json.dumps({report!r}))\n"
        "sys.stderr.write(' '.join(sys.argv[1:]))\n"
    )
    script.chmod(0o755)
    return script


REPORT = {
    "ok": True,
    "format": "alpaca",
    "rows": 4,
    "tokens": {
        "examples": 4, "tokens": 100, "trainableTokens": 20, "minTokens": 20, "meanTokens": 25.0,
        "p95Tokens": 31, "maxTokens": 32, "truncated": 1, "dropped": 0, "maxSeqLength": 30,
        "template": "chatml (tokenizer)",
    },
    "truncatedLines": [3],
}  # fmt: skip


def test_stats_prints_the_runtimes_token_figures_in_every_format(env: Env, tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "pets.jsonl", ALPACA)
    runtime = {"MODEL_GARDEN_RUNTIME_PYTHON": str(_canned_runtime(tmp_path, REPORT))}
    args = ["dataset", "stats", str(data), "--model", str(env.base), "--max-seq-length", "30"]
    table = env.run(*args, **runtime)
    assert table.exit_code == 0, table.output
    assert "min 20 / mean 25.0 / p95 31 / max 32" in table.stdout
    assert "truncated at 30 1" in " ".join(table.stdout.split())
    assert "100 (20 trained on)" in table.stdout
    doc = json.loads(env.run(*args, "-o", "json", **runtime).stdout)
    assert (doc["rows"], doc["p95Tokens"], doc["truncated"], doc["truncatedLines"]) == (
        4,
        31,
        1,
        [3],
    )
    assert yaml.safe_load(env.run(*args, "-o", "yaml", **runtime).stdout) == doc

    bad = {"ok": False, "errorCount": 2, "errors": ["pets.jsonl, line 2: field 'output': missing"]}
    failing = env.run(*args, MODEL_GARDEN_RUNTIME_PYTHON=str(_canned_runtime(tmp_path, bad)))
    assert failing.exit_code == 2
    assert "2 invalid rows, first: pets.jsonl, line 2" in one_line_error(failing)
    need_model = env.run("dataset", "stats", str(data))
    assert need_model.exit_code == 2 and "--model" in one_line_error(need_model)
    gone = env.run(*args, MODEL_GARDEN_RUNTIME_PYTHON=str(tmp_path / "nope"))
    assert gone.exit_code == 1 and "does not exist" in one_line_error(gone)
