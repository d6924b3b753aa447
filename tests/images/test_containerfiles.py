"""Static checks of every Containerfile, including the GPU ones (trainer, server), which cannot be
built here: no registry to pull their CUDA / vLLM bases from and no GPU. What is checked is what a
real build depends on: a base ARG whose default is the real upstream image (pinned, not
`latest`), a non-root final stage, the uv.lock extras they install, and versions that agree with
the lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from .conftest import REPO
from .containerfile import Containerfile, parse

pytestmark = pytest.mark.images

NAMES = ["operator", "runtime-cpu", "trainer", "server"]
UPSTREAM_BASES = {
    "operator": r"python:3\.11-slim-\w+",
    "runtime-cpu": r"python:3\.11-slim-\w+",
    "trainer": r"nvidia/cuda:(\d+)\.\d+\.\d+-(?:cudnn-)?runtime-ubuntu\d+\.\d+",
    "server": r"vllm/vllm-openai:v(\d+\.\d+\.\d+)",
}


def containerfile(name: str) -> Containerfile:
    return parse(REPO / "images" / name / "Containerfile")


def locked_version(package: str) -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    versions = {p["version"] for p in lock["package"] if p["name"] == package}
    assert len(versions) == 1, f"{package}: {versions}"
    return str(versions.pop())


@pytest.mark.parametrize("name", NAMES)
def test_base_is_an_arg_defaulting_to_a_pinned_upstream_image(name: str) -> None:
    cf = containerfile(name)
    default = cf.global_args.get("BASE")
    assert default, "ARG BASE=<upstream image> must come before the first FROM"
    assert re.fullmatch(UPSTREAM_BASES[name], default), default
    assert not default.startswith("localhost/") and not default.endswith(":latest")
    assert cf.final.base == "${BASE}", "the final stage must build on the BASE argument"
    uv_image = cf.global_args.get("UV_IMAGE") or ""
    assert re.fullmatch(r"ghcr\.io/astral-sh/uv:\d+\.\d+\.\d+", uv_image), uv_image


@pytest.mark.parametrize("name", NAMES)
def test_final_stage_is_non_root_with_a_python_entrypoint(name: str) -> None:
    cf = containerfile(name)
    assert cf.final.values("USER") == ["1000:1000"]
    assert cf.final.values("USER")[-1] == "1000:1000"
    launch = " ".join(cf.final.values("ENTRYPOINT") + cf.final.values("CMD"))
    assert re.search(r'"python", "-m", "model_garden\.(operator|training|serving)"', launch), launch
    env = " ".join(cf.final.values("ENV"))
    assert "HOME=/tmp" in env
    if name != "operator":
        assert "HF_HOME=/tmp/" in env, "the root filesystem is read-only in pods"


@pytest.mark.parametrize("name", NAMES)
def test_no_secrets_or_caches_in_layers(name: str) -> None:
    cf = containerfile(name)
    for stage in cf.stages:
        for keyword, rest in stage.instructions:
            assert not re.search(r"(TOKEN|PASSWORD|SECRET)\s*=", rest, re.I), (keyword, rest)
            if keyword == "RUN" and re.search(r"\buv (sync|pip install|python install)", rest):
                assert "--mount=type=cache" in rest or "--no-cache" in rest, (
                    f"uv cache would land in a layer: {rest}"
                )
            if keyword == "RUN" and "apt-get install" in rest:
                assert "rm -rf /var/lib/apt/lists/*" in rest


def test_operator_installs_the_lock_without_ml_extras() -> None:
    runs = " ".join(containerfile("operator").stages[1].values("RUN"))
    assert "uv sync --frozen --no-dev" in runs
    assert "--extra" not in runs and "--all-extras" not in runs


def test_trainer_installs_the_unsloth_extra_on_the_locked_cuda() -> None:
    cf = containerfile("trainer")
    runs = " ".join(cf.stages[1].values("RUN"))
    assert "uv sync --frozen --no-dev --extra train --extra unsloth" in runs
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {"train", "unsloth"} <= set(extras)
    match = re.fullmatch(UPSTREAM_BASES["trainer"], cf.global_args["BASE"] or "")
    assert match
    # torch's wheels bring their own CUDA; the base's CUDA major must be the same one.
    assert match.group(1) == locked_version("nvidia-cuda-runtime").split(".")[0]


def test_server_base_is_the_locked_vllm_and_adds_the_serve_extra() -> None:
    cf = containerfile("server")
    match = re.fullmatch(UPSTREAM_BASES["server"], cf.global_args["BASE"] or "")
    assert match
    assert match.group(1) == locked_version("vllm"), "base vLLM must equal uv.lock's vllm"
    runs = " ".join(cf.final.values("RUN"))
    assert "uv export --frozen --no-dev --extra serve" in runs
    assert (
        "serve"
        in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )


def test_runtime_cpu_installs_the_cpu_requirements() -> None:
    cf = containerfile("runtime-cpu")
    runs = " ".join(cf.stages[1].values("RUN"))
    assert "-c /src/runtime/cpu-constraints.txt -r /src/runtime/cpu-requirements.txt" in runs
    final = " ".join(cf.final.values("RUN") + cf.final.values("ENV"))
    for needed in (
        "libnuma1",
        "libtcmalloc-minimal4",
        "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    ):
        assert needed in final


def test_dockerignore_is_an_allowlist() -> None:
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "operator", "runtime"}
    # Everything a Containerfile COPYs from the context is allowed in.
    for name in NAMES:
        for stage in containerfile(name).stages:
            for rest in stage.values("COPY"):
                if rest.startswith("--from"):
                    continue
                for source in rest.split()[:-1]:
                    top = Path(source).parts[0]
                    assert top in allowed, f"{name}: COPY {source} is excluded by .dockerignore"
