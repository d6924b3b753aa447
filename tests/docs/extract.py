"""Read the fenced blocks of the docs pages: shell commands (with their heredocs), YAML and Python.

The pages are the interface users copy from, so the test reads exactly what they show: each
``sh``/``bash``/``shell`` block is cut into commands (comments dropped, ``\\`` continuations
joined, a ``<<'EOF'`` heredoc kept as the command's stdin); ``yaml`` and ``python`` blocks are
returned whole. ``console`` blocks are output, not commands, and are not read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = (
    "quickstart-kind.md",
    "for-ml-researchers.md",
    "for-ml-engineers.md",
    "for-platform-admins.md",
)
SHELL = {"sh", "bash", "shell"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*$")
HEREDOC = re.compile(r"<<-?\s*'?(?P<tag>[A-Za-z_]+)'?")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str  # one logical command line (continuations joined), heredoc marker included
    stdin: str | None = None  # the heredoc body, if any

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    """Every fenced block of ``docs/<page>``, in order (indented fences included)."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, lang, start = len(match["indent"]), match["lang"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][indent:])
            i += 1
        if i == len(lines):
            raise ValueError(f"{page}:{start + 1}: unterminated fence")
        out.append(Block(page, start + 1, lang, "\n".join(body) + "\n"))
        i += 1
    return out


def commands(block: Block) -> list[Command]:
    """The commands of one shell block."""
    lines = block.text.splitlines()
    out: list[Command] = []
    i = 0
    while i < len(lines):
        first = i
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        while line.endswith("\\") and i < len(lines):
            line = line[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        stdin = None
        heredoc = HEREDOC.search(line)
        if heredoc:
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != heredoc["tag"]:
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"{block.page}:{block.line}: heredoc {heredoc['tag']} not closed")
            i += 1
            stdin = "\n".join(body) + "\n"
        out.append(Command(block.page, block.line + 1 + first, line, stdin))
    return out


def all_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page)]


def all_commands() -> list[Command]:
    return [c for b in all_blocks() if b.lang in SHELL for c in commands(b)]
