"""The README's main command, run as a new user would, and what it prints checked line by line."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:e-?[0-9]+)?)"

pytestmark = pytest.mark.ml


def readme_main_command() -> str:
    """The first command of the README's "Two commands" block (the main job)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    first = next(line for line in block.splitlines() if line.strip())
    return first.split("#", 1)[0].strip()


def test_the_readme_names_the_quickstart_script() -> None:
    assert readme_main_command() == "scripts/quickstart"


def test_the_main_job_trains_serves_and_accounts(ml_runtime: str, tmp_path: Path) -> None:
    env = {**os.environ, "MODEL_GARDEN_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        ["bash", "-c", readme_main_command()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]

    assert re.search(
        r"^FineTuneJob pets-finetune: full fine-tuning of tiny-llama, \d+ steps", out, re.M
    )
    trained = re.search(
        rf"^ModelVersion pets-v1: eval loss {NUMBER} → {NUMBER}, {NUMBER} Wh, {NUMBER} g CO2e \((estimated|measured)\)",
        out,
        re.M,
    )
    assert trained, out
    before, after, wh, grams = (float(trained.group(i)) for i in range(1, 5))
    assert after < before * 0.5, "full fine-tuning of the demo data should at least halve the loss"
    assert wh > 0 and grams > 0, "a training run never reports zero energy"

    chat = re.search(r"^  chat: '(.+)'  usage (\{.*\})$", out, re.M)
    assert chat, out
    usage = ast.literal_eval(chat.group(2))
    assert chat.group(1).strip()
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

    serving = re.search(
        rf"^serving: (\d+) tokens this run \((\d+) in all\), {NUMBER} J in all \({NUMBER} J active\), {NUMBER} g CO2e per 1k tokens",
        out,
        re.M,
    )
    assert serving, out
    this_run, in_all = int(serving.group(1)), int(serving.group(2))
    total_j, active_j, per_1k = (float(serving.group(i)) for i in range(3, 6))
    assert this_run == usage["total_tokens"] and in_all >= this_run
    assert 0 < active_j <= total_j
    assert per_1k > 0

    home = tmp_path / "home"
    assert (home / "objects").is_dir(), "local mode keeps the resources as YAML"
    assert any((home / "objects").rglob("pets-v1*.yaml"))
