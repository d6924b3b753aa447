"""Argument handling: bad input is one line on stderr and a documented exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from model_garden.cli.errors import EXIT_EXISTS, EXIT_NOT_FOUND, EXIT_UNREACHABLE, EXIT_USAGE
from model_garden.cli.main import COMMANDS, cli

from .conftest import Env, one_line_error, train_args

MANIFEST = """\
apiVersion: modelgarden.dev/v1alpha1
kind: FineTuneJob
metadata:
  name: {name}
spec:
  baseModel: {{uri: "file://{base}"}}
  dataset: {{uri: "file://{dataset}"}}
  method: {{type: {method}}}
  hyperparameters: {{maxSteps: {steps}}}
  output: {{model: m}}
"""


def manifest(env: Env, tmp_path: Path, **fields: object) -> Path:
    values: dict[str, object] = {"name": "fromfile", "method": "full", "steps": 4}
    values.update(fields)
    path = tmp_path / "job.yaml"
    path.write_text(MANIFEST.format(base=env.base, dataset=env.dataset, **values))
    return path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--bogus"], "No such option '--bogus'"),
        (["train", "--method", "xyz"], "'xyz' is not one of"),
        (["train", "--max-steps", "0"], "--max-steps"),
        (["jobs", "list", "-o", "xml"], "'xml' is not one of"),
        (["versions", "promote", "x", "--stage", "prod"], "'prod' is not one of"),
        (["nosuch"], "No such command 'nosuch'"),
        (["train", "--dataset", "x.jsonl"], "--base-model and --dataset are needed"),
        (["config", "set", "colour", "blue"], "unknown setting 'colour'"),
        (["config", "set", "mode", "remote"], "mode must be one of"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(env: Env, args: list[str], needle: str) -> None:
    result = env.run(*args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert needle in one_line_error(result)


def test_a_missing_dataset_file_is_named(env: Env) -> None:
    result = env.run("train", "--base-model", str(env.base), "--dataset", "/nope/data.jsonl")
    assert result.exit_code == EXIT_USAGE
    assert "--dataset /nope/data.jsonl: no such file or directory" in one_line_error(result)


def test_an_invalid_manifest_names_the_field(env: Env, tmp_path: Path) -> None:
    result = env.run("train", "-f", str(manifest(env, tmp_path, method="xyz")))
    assert result.exit_code == EXIT_USAGE
    assert "spec.method.type: Input should be 'lora', 'qlora' or 'full'" in one_line_error(result)
    result = env.run("train", "-f", str(manifest(env, tmp_path, steps='"5"')))
    assert "spec.hyperparameters.maxSteps" in one_line_error(result)
    result = env.run("train", "-f", str(manifest(env, tmp_path, name="Bad_Name")))
    assert "metadata.name" in one_line_error(result)
    assert env.run("jobs", "list", "-o", "json").stdout.count('"name"') == 0  # nothing created


def test_manifest_and_flags_do_not_mix(env: Env, tmp_path: Path) -> None:
    result = env.run("train", "-f", str(manifest(env, tmp_path)), "--epochs", "2")
    assert result.exit_code == EXIT_USAGE
    assert "either -f or flags" in one_line_error(result)


def test_train_from_a_manifest_and_a_name_taken(env: Env, tmp_path: Path) -> None:
    path = manifest(env, tmp_path)
    first = env.run("train", "-f", str(path), "--wait")
    assert first.exit_code == 0, first.output
    again = env.run("train", "-f", str(path))
    assert again.exit_code == EXIT_EXISTS
    assert "FineTuneJob fromfile already exists" in one_line_error(again)


def test_what_does_not_exist_exits_3(env: Env) -> None:
    for args in (
        ["versions", "get", "nope-v9"],
        ["versions", "promote", "nope-v9"],
        ["jobs", "get", "nope"],
        ["jobs", "delete", "nope"],
        ["jobs", "logs", "nope"],
    ):
        result = env.run(*args)
        assert result.exit_code == EXIT_NOT_FOUND, args
        assert "not found" in one_line_error(result)


def test_an_unreachable_cluster_is_an_error_not_local_mode(env: Env, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: gone\n"
        "clusters: [{name: gone, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: gone, context: {cluster: gone, user: u}}]\n"
    )
    result = env.run("jobs", "list", KUBECONFIG=str(kubeconfig))
    assert result.exit_code == EXIT_UNREACHABLE, result.output
    assert "cannot reach the cluster of context gone (https://127.0.0.1:1)" in one_line_error(
        result
    )
    result = env.run("jobs", "list", "--context", "other", KUBECONFIG=str(kubeconfig))
    assert result.exit_code == EXIT_USAGE
    assert "no context 'other'" in one_line_error(result)
    # --local still works with a cluster configured
    assert env.run("jobs", "list", "--local", KUBECONFIG=str(kubeconfig)).exit_code == 0


def test_local_mode_has_one_namespace(env: Env) -> None:
    result = env.run("jobs", "list", "--local", "-n", "team")
    assert result.exit_code == EXIT_USAGE
    assert "local mode has one namespace" in one_line_error(result)


def test_without_a_runtime_train_says_how_to_get_one(env: Env) -> None:
    result = env.run(*train_args(env, "j"), MODEL_GARDEN_RUNTIME_PYTHON="/nope/python")
    assert result.exit_code == 1
    assert "build-cpu-runtime.sh" in one_line_error(result)


def test_config_set_view_and_defaults_reach_the_job(env: Env) -> None:
    assert env.run("config", "set", "country", "FRA").exit_code == 0
    assert env.run("config", "set", "region", "x").exit_code == 0
    assert env.run("config", "set", "region", "--unset").exit_code == 0
    view = env.run("config", "view", "-o", "json")
    assert '"country": "FRA"' in view.stdout and '"region"' not in view.stdout
    assert "FRA" in env.run("config", "view").stdout
    assert env.run(*train_args(env, "j2")).exit_code == 0
    job = env.run("jobs", "get", "j2", "-o", "yaml").stdout
    assert "country: FRA" in job


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help_with_an_example(env: Env, name: str) -> None:
    result = env.run(name, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout, name
    sub = cli.get_command(None, name)  # type: ignore[arg-type]
    for child in getattr(sub, "commands", {}):
        child_help = env.run(name, child, "--help")
        assert child_help.exit_code == 0 and "Example" in child_help.stdout, (name, child)


def test_version_and_help_start_without_heavy_imports() -> None:
    code = (
        "import sys\n"
        "from model_garden.cli.main import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pydantic', 'kubernetes', 'rich', 'httpx') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout
    version = subprocess.run(
        [sys.executable, "-m", "model_garden.cli.main", "version", "-o", "json"],
        capture_output=True,
        text=True,
    )
    assert version.returncode == 0 and '"version": "0.1.0"' in version.stdout


def test_a_dataset_missing_from_its_claim_is_named(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "claim.yaml"
    path.write_text(
        MANIFEST.format(
            name="c", base=env.base, dataset=env.dataset, method="full", steps=4
        ).replace(f"file://{env.dataset}", "pvc://datasets/chat.jsonl")
    )
    result = env.run("train", "-f", str(path))
    assert result.exit_code == EXIT_USAGE
    line = one_line_error(result)
    assert "spec.dataset.uri: pvc://datasets/chat.jsonl is not on this machine" in line
    assert str(env.home / "claims/datasets/chat.jsonl") in line
