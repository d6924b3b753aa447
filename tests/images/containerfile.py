"""A small Containerfile reader for static checks: instructions with continuations joined, the
ARGs declared before the first FROM (the global build arguments), and the stages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, keyword: str) -> list[str]:
        return [value for kw, value in self.instructions if kw == keyword]


@dataclass
class Containerfile:
    global_args: dict[str, str | None]
    stages: list[Stage]
    text: str

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, rest) per instruction; comments dropped, backslash continuations joined."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        out.append((keyword.upper(), " ".join(rest.split())))
        current = ""
    if current:
        raise ValueError(f"unterminated continuation: {current!r}")
    return out


def parse(path: Path) -> Containerfile:
    text = path.read_text()
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for keyword, rest in instructions(text):
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+ )?(\S+)(?: AS (\S+))?", rest, re.IGNORECASE)
            if not match:
                raise ValueError(f"{path}: bad FROM {rest!r}")
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"{path}: {keyword} before the first FROM")
            name, eq, default = rest.partition("=")
            global_args[name] = default if eq else None
        else:
            stages[-1].instructions.append((keyword, rest))
    if not stages:
        raise ValueError(f"{path}: no FROM")
    return Containerfile(global_args=global_args, stages=stages, text=text)
