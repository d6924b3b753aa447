"""Dataset files to validated examples: file types, format detection, row validation by line.

Pure Python (pyarrow / ``datasets`` only for parquet and saved-dataset folders, imported lazily),
so ``model-garden dataset validate`` and the trainer share it, and a malformed row fails before
any model is loaded: the error names the file, the line (or row) and the field.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMATS = ("alpaca", "chat", "completion", "text")
ROLES = ("system", "user", "assistant", "tool")
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "tool": "tool",
    "function_call": "tool",
    "observation": "tool",
}
MAX_ROW_BYTES = 1 << 20
"""A row over 1 MiB is refused: no fine-tuning example is that long, a broken export often is."""
MAX_ERRORS = 20


class DatasetError(ValueError):
    """A dataset problem located in the file: ``path:line: field: message``."""

    def __init__(
        self, path: str, line: int | None, field: str | None, message: str, unit: str = "line"
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.detail = message
        self.unit = unit
        where = f"{path}, {unit} {line}" if line is not None else path
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


class DatasetErrors(ValueError):
    """Several located problems; the first is the headline."""

    def __init__(self, errors: list[DatasetError], total: int) -> None:
        self.errors = errors
        self.total = total
        more = f" (and {total - 1} more)" if total > 1 else ""
        super().__init__(f"{errors[0]}{more}")


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class Segment:
    """A run of raw text; ``train`` says whether its tokens carry loss."""

    text: str
    train: bool


@dataclass(frozen=True)
class Example:
    """One validated row: a conversation (rendered with a chat template) or raw segments."""

    line: int
    messages: tuple[Message, ...] = ()
    segments: tuple[Segment, ...] = ()

    @property
    def is_chat(self) -> bool:
        return bool(self.messages)


@dataclass
class Record:
    """A row as read from the file, with where it came from."""

    line: int
    row: Any
    error: DatasetError | None = None


@dataclass
class DatasetReport:
    path: str
    file_type: str
    format: str
    detected: bool
    rows: int
    examples: list[Example] = field(default_factory=list)
    errors: list[DatasetError] = field(default_factory=list)
    error_count: int = 0
    unit: str = "line"

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def summary(self) -> dict[str, Any]:
        how = "detected" if self.detected else "given"
        return {
            "file": self.path,
            "fileType": self.file_type,
            "format": self.format,
            "formatSource": how,
            "rows": self.rows,
            "valid": len(self.examples),
            "errors": self.error_count,
        }

    def lines(self) -> list[str]:
        """The human report the trainer logs and ``dataset validate`` prints."""
        how = "detected" if self.detected else "given"
        out = [
            f"dataset {self.path} ({self.file_type}): {self.rows} rows, format {self.format} ({how})",
        ]
        if self.ok:
            out.append(f"all {len(self.examples)} rows valid")
        else:
            out.append(f"{self.error_count} invalid rows:")
            out.extend(f"  {e}" for e in self.errors)
            if self.error_count > len(self.errors):
                out.append(f"  … {self.error_count - len(self.errors)} more")
        return out


# --- reading files ---------------------------------------------------------------------------


def file_type(path: Path) -> str:
    if path.is_dir():
        return "datasets"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise DatasetError(
        str(path), None, None, f"unknown file type {suffix!r}: use jsonl, json, csv, parquet"
    )


def _read_jsonl(path: Path) -> Iterator[Record]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            if len(raw) > MAX_ROW_BYTES:
                yield Record(
                    number,
                    None,
                    DatasetError(
                        str(path),
                        number,
                        None,
                        f"row is {len(raw)} bytes, over the {MAX_ROW_BYTES}-byte limit",
                    ),
                )
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Record(
                    number,
                    None,
                    DatasetError(
                        str(path), number, None, f"not UTF-8 (byte {exc.start}: {exc.reason})"
                    ),
                )
                continue
            try:
                yield Record(number, json.loads(text))
            except json.JSONDecodeError as exc:
                yield Record(
                    number,
                    None,
                    DatasetError(
                        str(path), number, None, f"invalid JSON at column {exc.colno}: {exc.msg}"
                    ),
                )


def _read_json(path: Path) -> Iterator[Record]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetError(str(path), line, None, f"not UTF-8 ({exc.reason})") from exc
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos < len(text) and text[pos] == "{":
        # {"data": [...]} or {"train": [...]}: find the list and parse it in place for line numbers
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(str(path), exc.lineno, None, f"invalid JSON: {exc.msg}") from exc
        key = next((k for k in ("data", "train", "rows") if isinstance(whole.get(k), list)), None)
        if key is None:
            raise DatasetError(
                str(path),
                1,
                None,
                "expected a JSON array of rows (or an object with a 'data' list)",
            )
        for index, row in enumerate(whole[key]):
            yield Record(index + 1, row)
        return
    if pos >= len(text) or text[pos] != "[":
        raise DatasetError(str(path), 1, None, "expected a JSON array of rows")
    pos = _skip_ws(text, pos + 1)
    if pos < len(text) and text[pos] == "]":
        return
    while True:
        line = text.count("\n", 0, pos) + 1
        try:
            row, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DatasetError(str(path), exc.lineno, None, f"invalid JSON: {exc.msg}") from exc
        yield Record(line, row)
        pos = _skip_ws(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            return
        raise DatasetError(
            str(path), text.count("\n", 0, pos) + 1, None, "invalid JSON: expected ',' or ']'"
        )


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _read_csv(path: Path) -> Iterator[Record]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DatasetError(str(path), line, None, f"not UTF-8 ({exc.reason})") from exc
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 2
    for row in reader:
        line = start
        start = reader.line_num + 1
        if None in row:
            yield Record(
                line, None, DatasetError(str(path), line, None, "more cells than header columns")
            )
            continue
        parsed: dict[str, Any] = {}
        for key, value in row.items():
            if value is None:
                continue
            # chat columns hold JSON lists in a cell
            if key in ("messages", "conversations") and value.strip().startswith("["):
                try:
                    parsed[key] = json.loads(value)
                except json.JSONDecodeError as exc:
                    yield Record(
                        line, None, DatasetError(str(path), line, key, f"invalid JSON: {exc.msg}")
                    )
                    break
            else:
                parsed[key] = value
        else:
            yield Record(line, parsed)


def _read_parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for index, row in enumerate(table.to_pylist()):
        yield Record(index + 1, row)


def _read_saved(path: Path) -> Iterator[Record]:
    if not (path / "dataset_info.json").exists() and not (path / "dataset_dict.json").exists():
        raise DatasetError(
            str(path), None, None, "a directory must be a saved `datasets` dataset (save_to_disk)"
        )
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(str(path))
    if isinstance(data, DatasetDict):
        split = "train" if "train" in data else next(iter(data))
        data = data[split]
    for index, row in enumerate(data):
        yield Record(index + 1, dict(row))


READERS = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "parquet": _read_parquet,
    "datasets": _read_saved,
}


def row_unit(kind: str) -> str:
    return "row" if kind in ("parquet", "datasets") else "line"


# --- formats ---------------------------------------------------------------------------------


def detect_format(row: Any) -> str | None:
    """The format a row's fields imply, or None."""
    if not isinstance(row, dict):
        return None
    if "messages" in row or "conversations" in row:
        return "chat"
    if "instruction" in row and "output" in row:
        return "alpaca"
    if "prompt" in row and "completion" in row:
        return "completion"
    if "text" in row:
        return "text"
    return None


def _string(row: dict[str, Any], key: str, *, required: bool = True, empty_ok: bool = False) -> str:
    if key not in row or row[key] is None:
        if required:
            raise _FieldError(key, "missing")
        return ""
    value = row[key]
    if not isinstance(value, str):
        raise _FieldError(key, f"must be a string, got {type(value).__name__}")
    if not empty_ok and required and not value.strip():
        raise _FieldError(key, "is empty")
    return value


class _FieldError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


def _parse_messages(row: dict[str, Any]) -> tuple[Message, ...]:
    if "messages" in row:
        key, role_key, content_key, roles = "messages", "role", "content", {r: r for r in ROLES}
    else:
        key, role_key, content_key, roles = "conversations", "from", "value", SHAREGPT_ROLES
    items = row[key]
    if not isinstance(items, list):
        raise _FieldError(key, f"must be a list, got {type(items).__name__}")
    if not items:
        raise _FieldError(key, "is empty")
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise _FieldError(where, f"must be an object, got {type(item).__name__}")
        rk, ck = role_key, content_key
        if rk not in item and "role" in item:  # ShareGPT files in the wild mix both spellings
            rk, ck = "role", "content"
        if rk not in item:
            raise _FieldError(f"{where}.{rk}", "missing")
        role = item[rk]
        if not isinstance(role, str) or role.lower() not in roles:
            raise _FieldError(
                f"{where}.{rk}",
                f"unknown role {role!r} (expected one of {', '.join(sorted(set(roles)))})",
            )
        if ck not in item or item[ck] is None:
            raise _FieldError(f"{where}.{ck}", "missing")
        content = item[ck]
        if not isinstance(content, str):
            raise _FieldError(f"{where}.{ck}", f"must be a string, got {type(content).__name__}")
        mapped = roles[role.lower()]
        if mapped == "assistant" and not content.strip():
            raise _FieldError(f"{where}.{ck}", "assistant message is empty")
        out.append(Message(mapped, content))
    if not any(m.role == "assistant" for m in out):
        raise _FieldError(key, "no assistant message: nothing to learn from")
    return tuple(out)


def parse_row(row: Any, fmt: str, line: int) -> Example:
    """Validate one row of a known format; raises _FieldError naming the field."""
    if not isinstance(row, dict):
        raise _FieldError("", f"row must be a JSON object, got {type(row).__name__}")
    if fmt == "chat":
        if "messages" not in row and "conversations" not in row:
            raise _FieldError("messages", "missing (chat rows need messages or conversations)")
        return Example(line, messages=_parse_messages(row))
    if fmt == "alpaca":
        instruction = _string(row, "instruction")
        extra = _string(row, "input", required=False, empty_ok=True)
        output = _string(row, "output")
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        system = _string(row, "system", required=False, empty_ok=True)
        msgs = (Message("system", system),) if system.strip() else ()
        return Example(
            line, messages=msgs + (Message("user", prompt), Message("assistant", output))
        )
    if fmt == "completion":
        prompt = _string(row, "prompt", empty_ok=True)
        completion = _string(row, "completion")
        return Example(line, segments=(Segment(prompt, False), Segment(completion, True)))
    if fmt == "text":
        return Example(line, segments=(Segment(_string(row, "text"), True),))
    raise _FieldError("format", f"unknown format {fmt!r}")


def load_dataset_file(
    path: str | Path, fmt: str = "auto", max_errors: int = MAX_ERRORS
) -> DatasetReport:
    """Read and validate every row; the report holds examples and located errors (none raised)."""
    p = Path(path)
    if not p.exists():
        raise DatasetError(str(p), None, None, "no such file or directory")
    kind = file_type(p)
    unit = row_unit(kind)
    if fmt not in ("auto", *FORMATS):
        raise DatasetError(str(p), None, "format", f"unknown format {fmt!r}")
    report = DatasetReport(str(p), kind, fmt, fmt == "auto", 0, unit=unit)

    def fail(err: DatasetError) -> None:
        report.error_count += 1
        if len(report.errors) < max_errors:
            report.errors.append(err)

    for record in READERS[kind](p):
        report.rows += 1
        if record.error is not None:
            fail(record.error)
            continue
        if report.format == "auto":
            found = detect_format(record.row)
            if found is None:
                keys = sorted(record.row) if isinstance(record.row, dict) else []
                fail(
                    DatasetError(
                        str(p),
                        record.line,
                        None,
                        f"cannot detect the format from fields {keys}: expected messages, "
                        "conversations, instruction+output, prompt+completion or text",
                        unit,
                    )
                )
                continue
            report.format = found
        try:
            report.examples.append(parse_row(record.row, report.format, record.line))
        except _FieldError as exc:
            fail(DatasetError(str(p), record.line, exc.field or None, exc.message, unit))
    if report.rows == 0:
        fail(DatasetError(str(p), None, None, "the dataset has no rows"))
    if report.format == "auto":
        report.format = "unknown"
    return report


def load_examples(path: str | Path, fmt: str = "auto") -> DatasetReport:
    """Like :func:`load_dataset_file`, but raise :class:`DatasetErrors` on the first bad row."""
    report = load_dataset_file(path, fmt)
    if not report.ok:
        raise DatasetErrors(report.errors, report.error_count)
    return report


def split_eval(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic (train, eval) index split; at least one eval row when fraction > 0."""
    import random

    order = list(range(count))
    random.Random(seed).shuffle(order)
    n_eval = 0
    if fraction > 0 and count >= 2:
        n_eval = min(count - 1, max(1, round(count * fraction)))
    return sorted(order[n_eval:]), sorted(order[:n_eval])
