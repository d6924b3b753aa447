"""Datasets under ``<claim>/<namespace>/datasets/``: listed, previewed, counted, and uploaded only
after the trainer's own validator (``load_dataset_file``, what ``mg dataset validate`` runs)
accepted every row."""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from model_garden.training.datasets import DatasetError, DatasetReport, load_dataset_file

from . import models
from .source import ApiError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.(jsonl|json|csv)$")
CHUNK = 1 << 20


def _report(path: Path, fmt: str = "auto") -> DatasetReport:
    try:
        return load_dataset_file(path, fmt)
    except DatasetError as exc:
        raise ApiError(422, _detail(f"{path.name}: {exc.detail}", [exc])) from exc


def _detail(message: str, errors: list[DatasetError]) -> dict[str, Any]:
    return models.ValidationDetail(
        message=message,
        errors=[models.ErrorItem(field=e.field, line=e.line, message=e.detail) for e in errors],
    ).model_dump(by_alias=True)


def _file(folder: Path | None, name: str) -> Path:
    if folder is None or not NAME.match(name):
        raise ApiError(404, f"dataset {name} not found")
    path = folder / name
    if not path.is_file():
        raise ApiError(404, f"dataset {name} not found")
    return path


def listing(folder: Path | None, namespace: str) -> models.DatasetList:
    items = []
    if folder is not None and folder.is_dir():
        for path in sorted(folder.iterdir()):
            if not NAME.match(path.name) or not path.is_file():
                continue
            with contextlib.suppress(DatasetError, OSError):
                rep = load_dataset_file(path)
                st = path.stat()
                items.append(
                    models.DatasetInfo(
                        namespace=namespace,
                        name=path.name,
                        format=rep.format,
                        rows=rep.rows,
                        bytes=st.st_size,
                        modified=datetime.fromtimestamp(st.st_mtime, UTC).isoformat(),
                    )
                )
    return models.DatasetList(items=items)


def _example_row(example: Any) -> dict[str, Any]:
    if example.is_chat:
        return {
            "line": example.line,
            "messages": [{"role": m.role, "content": m.content} for m in example.messages],
        }
    return {
        "line": example.line,
        "segments": [{"text": s.text, "train": s.train} for s in example.segments],
    }


def preview(folder: Path | None, name: str, limit: int) -> models.DatasetPreview:
    rep = _report(_file(folder, name))
    return models.DatasetPreview(
        format=rep.format, rows=[_example_row(e) for e in rep.examples[:limit]], total=rep.rows
    )


def _characters(example: Any) -> int:
    if example.is_chat:
        return sum(len(m.content) for m in example.messages)
    return sum(len(s.text) for s in example.segments)


def stats(folder: Path | None, name: str) -> models.DatasetStats:
    """Row and character counts; token counts need the model's tokenizer (the ML runtime's
    ``mg dataset stats``), so ``tokens`` is null here."""
    rep = _report(_file(folder, name))
    chars = [_characters(e) for e in rep.examples]
    return models.DatasetStats(
        rows=rep.rows,
        format=rep.format,
        tokens=None,
        characters=models.CharacterStats(
            total=sum(chars),
            mean=statistics.fmean(chars) if chars else 0.0,
            max=max(chars, default=0),
        ),
    )


def upload(
    folder: Path | None, namespace: str, name: str, stream: BinaryIO, cap: int
) -> models.Uploaded:
    """Write the upload to a hidden file in the target folder, validate it with the trainer's
    validator, then rename it into place; on any refusal the hidden file is removed."""
    if folder is None:
        raise ApiError(501, "this read API has no artifacts folder to store datasets in")
    if not NAME.match(name):
        raise ApiError(
            422,
            _detail(
                "the file name must be letters, digits, '.', '_' or '-' and end in .jsonl, .json or .csv",
                [],
            ),
        )
    folder.mkdir(parents=True, exist_ok=True)
    suffix = name.rsplit(".", 1)[1]
    tmp = folder / f".upload-{uuid.uuid4().hex}.{suffix}"
    try:
        size = 0
        with tmp.open("wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise ApiError(413, f"the upload is larger than {cap} bytes")
                out.write(chunk)
        rep = _report(tmp)
        if not rep.ok:
            noun = "row" if rep.error_count == 1 else "rows"
            raise ApiError(
                422,
                _detail(
                    f"{name}: {rep.error_count} invalid {noun}; nothing was stored", rep.errors
                ),
            )
        os.replace(tmp, folder / name)
        return models.Uploaded(namespace=namespace, name=name, format=rep.format, rows=rep.rows)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
