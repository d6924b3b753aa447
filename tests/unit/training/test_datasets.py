"""Dataset formats, file types and located errors (pure Python, no runtime)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from model_garden.training.datasets import (
    MAX_ROW_BYTES,
    DatasetErrors,
    Message,
    Segment,
    detect_format,
    load_dataset_file,
    load_examples,
    split_eval,
)

ALPACA = {"instruction": "Describe the pets.", "input": "a red cat", "output": "The cat is red."}
CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
}
SHAREGPT = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]}
COMPLETION = {"prompt": "2+2=", "completion": "4"}
TEXT = {"text": "The cat is red."}


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("row", "fmt"),
    [
        (ALPACA, "alpaca"),
        (CHAT, "chat"),
        (SHAREGPT, "chat"),
        (COMPLETION, "completion"),
        (TEXT, "text"),
    ],
)
def test_auto_detects_each_format(tmp_path: Path, row: dict[str, object], fmt: str) -> None:
    report = load_examples(write_jsonl(tmp_path / "d.jsonl", [row, row]))
    assert report.format == fmt and report.detected
    assert len(report.examples) == 2


def test_explicit_format_is_kept(tmp_path: Path) -> None:
    report = load_examples(write_jsonl(tmp_path / "d.jsonl", [ALPACA]), "alpaca")
    assert report.format == "alpaca" and not report.detected


def test_rows_become_messages_or_segments(tmp_path: Path) -> None:
    alpaca = load_examples(write_jsonl(tmp_path / "a.jsonl", [ALPACA])).examples[0]
    assert alpaca.messages == (
        Message("user", "Describe the pets.\n\na red cat"),
        Message("assistant", "The cat is red."),
    )
    share = load_examples(write_jsonl(tmp_path / "s.jsonl", [SHAREGPT])).examples[0]
    assert [m.role for m in share.messages] == ["user", "assistant"]
    comp = load_examples(write_jsonl(tmp_path / "c.jsonl", [COMPLETION])).examples[0]
    assert comp.segments == (Segment("2+2=", False), Segment("4", True))
    text = load_examples(write_jsonl(tmp_path / "t.jsonl", [TEXT])).examples[0]
    assert text.segments == (Segment("The cat is red.", True),)


def test_json_array_and_data_object_with_line_numbers(tmp_path: Path) -> None:
    arr = tmp_path / "d.json"
    arr.write_text(json.dumps([ALPACA, ALPACA, ALPACA], indent=2), encoding="utf-8")
    report = load_examples(arr)
    assert len(report.examples) == 3 and report.file_type == "json"
    assert report.examples[1].line > report.examples[0].line > 1
    obj = tmp_path / "o.json"
    obj.write_text(json.dumps({"data": [TEXT, TEXT]}), encoding="utf-8")
    assert len(load_examples(obj).examples) == 2


def test_csv_with_alpaca_and_chat_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["instruction", "input", "output"])
        w.writeheader()
        w.writerows([ALPACA, {**ALPACA, "output": "multi\nline"}, ALPACA])
    report = load_examples(path)
    assert report.format == "alpaca" and [e.line for e in report.examples] == [2, 3, 5]
    chat = tmp_path / "c.csv"
    with chat.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["messages"])
        w.writeheader()
        w.writerow({"messages": json.dumps(CHAT["messages"])})
    assert load_examples(chat).format == "chat"


BAD_ROLE = {"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}
MALFORMED: list[tuple[str, str, int, str | None, str]] = [
    # (name, file body, line, field, message fragment)
    ("bad json line", json.dumps(ALPACA) + "\n{not json\n", 2, None, "invalid JSON"),
    ("row not an object", json.dumps(ALPACA) + "\n[1, 2]\n", 2, None, "must be a JSON object"),
    (
        "missing output",
        json.dumps({"instruction": "x", "output": "y"})
        + "\n"
        + json.dumps({"instruction": "x", "input": ""})
        + "\n",
        2,
        "output",
        "missing",
    ),
    (
        "wrong type",
        json.dumps({"instruction": 5, "output": "y"}) + "\n",
        1,
        "instruction",
        "must be a string",
    ),
    (
        "empty output",
        json.dumps({"instruction": "x", "output": "  "}) + "\n",
        1,
        "output",
        "is empty",
    ),
    ("empty messages", json.dumps({"messages": []}) + "\n", 1, "messages", "is empty"),
    (
        "wrong role",
        json.dumps(CHAT) + "\n" + json.dumps(BAD_ROLE) + "\n",
        2,
        "messages[0].role",
        "unknown role 'robot'",
    ),
    (
        "missing content",
        json.dumps({"messages": [{"role": "user"}]}) + "\n",
        1,
        "messages[0].content",
        "missing",
    ),
    (
        "no assistant",
        json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n",
        1,
        "messages",
        "no assistant",
    ),
    (
        "sharegpt bad from",
        json.dumps({"conversations": [{"from": "alien", "value": "x"}]}) + "\n",
        1,
        "conversations[0].from",
        "unknown role",
    ),
    (
        "message not object",
        json.dumps({"messages": ["hi"]}) + "\n",
        1,
        "messages[0]",
        "must be an object",
    ),
    (
        "content not string",
        json.dumps({"messages": [{"role": "assistant", "content": 3}]}) + "\n",
        1,
        "messages[0].content",
        "must be a string",
    ),
    (
        "empty text",
        json.dumps(TEXT) + "\n" + json.dumps({"text": ""}) + "\n",
        2,
        "text",
        "is empty",
    ),
    (
        "empty completion",
        json.dumps({"prompt": "a", "completion": ""}) + "\n",
        1,
        "completion",
        "is empty",
    ),
    (
        "undetectable",
        json.dumps({"question": "a", "answer": "b"}) + "\n",
        1,
        None,
        "cannot detect the format",
    ),
    (
        "mixed formats",
        json.dumps(ALPACA) + "\n\n" + json.dumps(TEXT) + "\n",
        3,
        "instruction",
        "missing",
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "line", "field", "fragment"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_jsonl_rows_name_file_line_and_field(
    tmp_path: Path, name: str, body: str, line: int, field: str | None, fragment: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(DatasetErrors) as info:
        load_examples(path)
    err = info.value.errors[0]
    assert err.path == str(path) and err.line == line and err.field == field
    assert fragment in str(err)
    assert f"{path}, line {line}" in str(info.value)


def test_non_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(json.dumps(TEXT).encode() + b"\n" + b'{"text": "caf\xe9"}\n')
    with pytest.raises(DatasetErrors, match=r"line 2: not UTF-8"):
        load_examples(path)


def test_oversize_row(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps(TEXT) + "\n" + json.dumps({"text": "x" * MAX_ROW_BYTES}) + "\n")
    with pytest.raises(DatasetErrors, match=r"line 2: row is \d+ bytes, over the"):
        load_examples(path)


def test_bad_json_file_and_csv_errors(tmp_path: Path) -> None:
    j = tmp_path / "bad.json"
    j.write_text('[\n {"text": "a"},\n {"text": "b"\n]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.json, line 4: invalid JSON"):
        load_examples(j)
    c = tmp_path / "bad.csv"
    c.write_text("instruction,output\nx,y\nz\n", encoding="utf-8")
    with pytest.raises(DatasetErrors, match=r"bad.csv, line 3: field 'output': missing"):
        load_examples(c)
    bad_cell = tmp_path / "cell.csv"
    bad_cell.write_text('messages\n"[{""role"": "\n', encoding="utf-8")
    with pytest.raises(DatasetErrors, match=r"line 2: field 'messages': invalid JSON"):
        load_examples(bad_cell)


def test_empty_file_and_unknown_type(tmp_path: Path) -> None:
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DatasetErrors, match="no rows"):
        load_examples(empty)
    (tmp_path / "x.txt").write_text("a", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown file type"):
        load_examples(tmp_path / "x.txt")


def test_report_collects_many_errors(tmp_path: Path) -> None:
    rows = [ALPACA] + [{"instruction": "x"}] * 30
    report = load_dataset_file(write_jsonl(tmp_path / "d.jsonl", rows))
    assert report.error_count == 30 and len(report.errors) == 20
    text = "\n".join(report.lines())
    assert "30 invalid rows" in text and "… 10 more" in text


def test_detect_and_split() -> None:
    assert detect_format({"foo": 1}) is None and detect_format([1]) is None
    train, ev = split_eval(100, 0.05, seed=1)
    assert len(ev) == 5 and not set(train) & set(ev) and split_eval(100, 0.05, 1) == (train, ev)
    assert split_eval(1, 0.5, 0) == ([0], [])
    assert len(split_eval(10, 0.01, 0)[1]) == 1
