"""The README's main command, run as a new user would, and what it prints checked line by line."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest

from model_garden.local.store import LocalStore

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
        rf"^ModelVersion pets-v1: eval loss {NUMBER} → {NUMBER}, {NUMBER} (k|m)?Wh,"
        rf" {NUMBER} (µg|mg|g|kg) CO2e \((estimated|measured)\)$",
        out,
        re.M,
    )
    assert trained, out
    before, after = float(trained.group(1)), float(trained.group(2))
    wh = float(trained.group(3)) * {"k": 1e3, "m": 1e-3, None: 1.0}[trained.group(4)]
    grams = (
        float(trained.group(5)) * {"µg": 1e-6, "mg": 1e-3, "g": 1.0, "kg": 1e3}[trained.group(6)]
    )
    assert after < before * 0.5, "full fine-tuning of the demo data should at least halve the loss"
    assert wh > 0 and grams > 0, "a training run never reports zero energy"
    for figure in re.findall(r"\b\d+\.\d+\b", out.split("\nMade", 1)[0]):
        assert len(figure.replace(".", "").lstrip("0")) <= 4, f"unrounded figure {figure}"
    assert re.search(r"^  Verified: [0-9.]+ (kB|MB), sha256:[0-9a-f]{12}…$", out, re.M), out

    chat = re.search(r"^  chat: '(.+)'  usage (\{.*\})$", out, re.M)
    assert chat, out
    usage = ast.literal_eval(chat.group(2))
    assert chat.group(1).strip()
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0

    assert re.search(r"^  endpoint http://127\.0\.0\.1:\d+/v1$", out, re.M), out
    serving = re.search(
        rf"^serving: (\d+) tokens, {NUMBER} J \({NUMBER} J active\), {NUMBER} g CO2e per 1k"
        r" tokens \((estimated|measured)\); the server is stopped$",
        out,
        re.M,
    )
    assert serving, out
    tokens = int(serving.group(1))
    total_j, active_j, per_1k = (float(serving.group(i)) for i in range(2, 5))
    assert tokens == usage["total_tokens"], "a new deployment: its meter counted this chat only"
    assert 0 < active_j <= total_j
    assert per_1k > 0

    home = tmp_path / "home"
    assert (home / "objects").is_dir(), "local mode keeps the resources as YAML"
    assert (home / "objects/modelversions/pets-v1.yaml").is_file()
    assert not list((home / "objects").rglob("inferencedeployments/*.yaml")), "deleted at the end"
    servers = [
        p
        for p in LocalStore(home).list_raw("Pod")
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "server"
    ]
    assert servers == [], "no server pod left"
    made = out.split(f"Made, in {home}:", 1)[1]
    # laid out as the operator lays it out on its default claim (full fine-tuning: full/)
    assert re.search(
        r"artifact     claims/model-garden-artifacts/default/pets/v1/(full|merged)$", made, re.M
    )
    # the next commands it suggests work (all but a second training)
    suggested = re.findall(r"^  (mg (?:jobs|versions) .+)$", made, re.M)
    assert len(suggested) == 2, made
    for command in suggested:
        step = subprocess.run(
            ["uv", "run", "--frozen", *command.split()],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert step.returncode == 0, command + step.stdout + step.stderr
        assert "pets" in step.stdout
