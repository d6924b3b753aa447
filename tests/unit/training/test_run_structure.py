"""The trainer's run is a short sequence of named stages (issue 8, item 15).

``run()`` was 334 lines with numbered comments; it now only orders stage functions, each in a
module with one job. This keeps it that way: a stage that grows past a screen is split.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[3] / "operator" / "model_garden" / "training"
STAGE_MODULES = ["run.py", "session.py", "stages.py", "resume.py", "fit.py", "exits.py"]


def functions(path: Path) -> dict[str, int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: (node.end_lineno or node.lineno) - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_run_only_orders_the_stages() -> None:
    assert functions(TRAINING / "run.py")["run"] <= 30


@pytest.mark.parametrize("name", STAGE_MODULES)
def test_stage_modules_are_small_and_their_functions_short(name: str) -> None:
    path = TRAINING / name
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 450
    long = {f: n for f, n in functions(path).items() if n > 60}
    assert not long, f"{name}: functions over 60 lines: {long}"


def test_public_names_other_modules_import_stay_in_run() -> None:
    from model_garden.training import run

    for name in [
        "EXIT_FAILED",
        "EXIT_INVALID_CONFIG",
        "EXIT_BAD_INPUT",
        "EXIT_TERMINATED",
        "BAD_INPUT_REASONS",
        "SIGTERM_EXIT_BOUND_SECONDS",
        "exit_code",
        "run",
        "main",
    ]:
        assert hasattr(run, name), name
