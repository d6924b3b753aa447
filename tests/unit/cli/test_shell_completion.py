"""Shell completion (Click's): the script for ~/.bashrc, and commands and sub-commands completed
from the lazily loaded command table."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

MG = shutil.which("mg")


def _mg(env: dict[str, str]) -> str:
    assert MG is not None, "the `mg` entry point is installed by `uv sync`"
    proc = subprocess.run(
        [MG], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_bash_script_defines_the_completion_function() -> None:
    script = _mg({"_MG_COMPLETE": "bash_source"})
    assert "_mg_completion()" in script and "complete -o nosort -F _mg_completion mg" in script


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [("mg jo", "1", "jobs"), ("mg jobs w", "2", "watch"), ("mg deployments sc", "2", "scale")],
)
def test_commands_complete(words: str, cword: str, expected: str) -> None:
    out = _mg({"_MG_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": cword})
    assert f"plain,{expected}" in out.splitlines(), out
