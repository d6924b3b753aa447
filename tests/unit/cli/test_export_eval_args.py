"""``mg export`` and ``mg eval``: argument handling and bad input, each a one-line error with a
documented exit code (the ML work itself is tested in tests/ml/test_cli_export.py and
tests/ml/test_cli_eval.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_garden.cli.errors import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE
from model_garden.cli.eval import report_uri, status_evaluation
from model_garden.local.store import LocalStore

from .conftest import Env, one_line_error


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["export"], "Missing argument 'VERSION'"),
        (["export", "m-v1"], "--out is needed"),
        (
            ["export", "m-v1", "--out", "x", "--format", "gguf"],
            "'gguf' is not one of 'merged', 'gguf-f16'",
        ),
        (["export", "m-v1", "--out", "x", "-o", "xml"], "'xml' is not one of"),
        (["eval", "m-v1"], "Missing option '--dataset'"),
        (["eval", "m-v1", "--dataset", "d", "--format", "xml"], "'xml' is not one of"),
        (["eval", "m-v1", "--dataset", "d", "--max-new-tokens", "0"], "--max-new-tokens"),
        (["eval", "m-v1", "--dataset", "d", "--batch-size", "0"], "--batch-size"),
        (["eval", "m-v1", "--dataset", "d", "--bogus"], "No such option '--bogus'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(env: Env, args: list[str], needle: str) -> None:
    result = env.run(*args)
    assert result.exit_code == EXIT_USAGE, result.output
    assert needle in one_line_error(result)


def test_gguf_without_the_converter_says_how_to_get_it(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODEL_GARDEN_LLAMA_CPP", raising=False)
    result = env.run("export", "m-v1", "--format", "gguf-q8_0", "--out", str(tmp_path / "o"))
    assert result.exit_code == EXIT_USAGE
    assert "scripts/build-llama-cpp.sh" in one_line_error(result)
    result = env.run(
        "export", "m-v1", "--format", "gguf-f16", "--out", str(tmp_path / "o"),
        MODEL_GARDEN_LLAMA_CPP=str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == EXIT_USAGE
    assert "has no converter/convert_hf_to_gguf.py" in one_line_error(result)


def test_a_version_that_does_not_exist_exits_3(env: Env, tmp_path: Path) -> None:
    result = env.run("export", "nope-v9", "--out", str(tmp_path / "out"))
    assert result.exit_code == EXIT_NOT_FOUND
    assert "ModelVersion nope-v9 not found (local store" in one_line_error(result)
    assert not (tmp_path / "out").exists()
    result = env.run("eval", "nope-v9", "--dataset", str(env.dataset))
    assert result.exit_code == EXIT_NOT_FOUND
    assert "ModelVersion nope-v9 not found" in one_line_error(result)


def test_a_missing_dataset_file_is_named(env: Env) -> None:
    result = env.run("eval", "m-v1", "--dataset", "/nope/held.jsonl")
    assert result.exit_code == EXIT_USAGE
    assert "--dataset /nope/held.jsonl: no such file or directory" in one_line_error(result)


def test_an_occupied_out_folder_is_refused(env: Env, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    result = env.run("export", "m-v1", "--out", str(tmp_path / "out"))
    assert result.exit_code == EXIT_USAGE
    assert f"--out {tmp_path / 'out'}: exists and is not an empty folder" in one_line_error(result)
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_in_a_cluster_paths_must_be_claim_uris_and_gguf_is_made_locally(
    env: Env, tmp_path: Path
) -> None:
    """They run as Jobs there (tests/cluster/test_cli_tasks.py): what names this machine's
    files is refused before the cluster is asked anything."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    for args, needle in (
        (["export", "m-v1", "--out", str(tmp_path / "out")], "in a cluster, a pvc:// URI"),
        (["export", "m-v1", "--format", "gguf-f16"], "in a cluster mg export makes merged"),
        (["eval", "m-v1", "--dataset", str(env.dataset)], "in a cluster, a pvc:// URI"),
    ):
        result = env.run(*args, KUBECONFIG=str(kubeconfig))
        assert result.exit_code == EXIT_USAGE, result.output
        assert needle in one_line_error(result)


def _version(env: Env, name: str, uri: str) -> None:
    LocalStore(env.home).create(
        {
            "apiVersion": "modelgarden.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": f"{name}-v1"},
            "spec": {"model": name, "version": 1, "artifact": {"uri": uri, "format": "merged"}},
        }
    )


def test_a_version_not_verified_is_refused(env: Env, tmp_path: Path) -> None:
    _version(env, "gone", "pvc://model-garden-artifacts/default/gone/v1/merged")
    result = env.run("export", "gone-v1", "--out", str(tmp_path / "out"))
    assert result.exit_code == EXIT_FAILED
    assert "ModelVersion gone-v1 is not Ready" in one_line_error(result)


def test_an_artifact_missing_from_this_machine_is_named(env: Env, tmp_path: Path) -> None:
    _version(env, "away", f"file://{tmp_path}/nothing-here")  # file:// is not verified
    result = env.run("eval", "away-v1", "--dataset", str(env.dataset))
    assert result.exit_code == EXIT_FAILED
    assert f"its artifact file://{tmp_path}/nothing-here is not at" in one_line_error(result)


def test_without_a_runtime_they_say_how_to_get_one(trained: Env, tmp_path: Path) -> None:
    result = trained.run(
        "export", "m-v1", "--out", str(tmp_path / "out"), MODEL_GARDEN_RUNTIME_PYTHON="/nope/py"
    )
    assert result.exit_code == EXIT_FAILED
    assert "build-cpu-runtime.sh" in one_line_error(result)


def test_a_failed_run_is_one_line_with_its_reason(trained: Env, tmp_path: Path) -> None:
    # the fake runtime runs the export with this interpreter, which has no CodeCarbon
    result = trained.run("export", "m-v1", "--out", str(tmp_path / "out"))
    assert result.exit_code == EXIT_FAILED, result.output
    assert "Error: export of m-v1 failed: ExportFailed: " in one_line_error(result)


def test_the_status_evaluation_is_checked_against_the_api() -> None:
    result = {
        "dataset": "held.jsonl",
        "loss": 1.25,
        "perplexity": 3.49,
        "examples": 4,
        "tokens": 40,
        "evaluatedAt": "2026-11-27T14:00:00Z",
        "carbon": {"energyKwh": 1e-6, "emissionsKg": 5e-8, "method": "estimated"},
    }
    got = status_evaluation(result, report_uri("pvc://a/default/m/v1/adapter"))
    assert got["report"] == "pvc://a/default/m/v1/eval.json"
    assert got["evaluatedAt"] == "2026-11-27T14:00:00Z" and got["emissionsKg"] == 5e-8
    with pytest.raises(ValueError, match="perplexity"):
        status_evaluation({**result, "perplexity": 0.5}, "file:///x/eval.json")
