"""The images built here (operator, runtime-cpu): entrypoints start, as uid 1000 on a read-only
root filesystem, and no package manager cache or build input is left in them."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import Run

pytestmark = pytest.mark.images

BUILT = ["operator", "runtime-cpu"]

# Run inside each image (as root, read-only): print every leftover a slim image must not carry.
LEFTOVERS = r"""
import glob, os
bad = []
bad += [p for p in glob.glob("/var/lib/apt/lists/*") if os.path.basename(p) not in ("lock", "partial", "auxfiles")]
bad += glob.glob("/var/lib/apt/lists/partial/*") + glob.glob("/var/cache/apt/archives/*.deb")
bad += glob.glob("/var/cache/apt/*.bin")
bad += [os.path.join(d, x) for d in ("/mnt", "/srv") if os.path.isdir(d) for x in os.listdir(d)]
bad += [p for p in ("/root/.cache", "/tmp/.cache", "/host-uv-cache", "/wheels", "/src",
                    "/usr/local/bin/uv", "/usr/local/bin/uvx") if os.path.lexists(p)]
for top in ("/app", "/home", "/root", "/tmp", "/usr/local", "/opt"):
    for dirpath, dirnames, _ in os.walk(top):
        bad += [os.path.join(dirpath, d) for d in dirnames
                if d in ("pip-cache", "uv-cache") or (d == ".cache" and "site-packages" not in dirpath)]
print("\n".join(bad))
"""


@pytest.mark.parametrize("name", BUILT)
def test_runs_as_uid_1000(name: str, images: dict[str, str], run: Run, engine: str) -> None:
    config = json.loads(
        subprocess.run(
            [engine, "image", "inspect", "--format", "{{json .Config}}", images[name]],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert config["User"] == "1000:1000"
    result = run(
        images[name], "-c", "import os; print(os.getuid(), os.getgid())", entrypoint="python"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000", "1000"]


@pytest.mark.parametrize("name", BUILT)
def test_no_package_manager_caches(name: str, images: dict[str, str], run: Run) -> None:
    result = run(images[name], "-c", LEFTOVERS, entrypoint="python", user="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"left in {images[name]}:\n{result.stdout}"


def test_operator_entrypoint_starts(images: dict[str, str], run: Run) -> None:
    result = run(images["operator"], "--help")
    assert result.returncode == 0, result.stderr
    assert "Model Garden operator" in result.stdout
    cli = run(images["operator"], "--help", entrypoint="model-garden")
    assert cli.returncode == 0, cli.stderr
    assert "Usage: model-garden" in cli.stdout


def test_operator_image_has_no_ml_stack(images: dict[str, str], run: Run) -> None:
    probe = "import importlib.util as u; print([m for m in ('torch', 'vllm', 'transformers') if u.find_spec(m)])"
    result = run(images["operator"], "-c", probe, entrypoint="python")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("model_garden.training", "python -m model_garden.training"),
        ("model_garden.serving", "python -m model_garden.serving"),
        ("model_garden.operator.verify", "--path"),
    ],
)
def test_runtime_cpu_entrypoints_start(
    module: str, expected: str, images: dict[str, str], run: Run
) -> None:
    result = run(images["runtime-cpu"], "-m", module, "--help", entrypoint="python")
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


def test_runtime_cpu_has_cpu_torch_vllm_and_tcmalloc(images: dict[str, str], run: Run) -> None:
    probe = (
        "import os, torch, vllm; "
        "maps = open('/proc/self/maps').read(); "
        "print(torch.__version__, vllm.__version__, 'tcmalloc' in maps, torch.cuda.is_available())"
    )
    result = run(images["runtime-cpu"], "-c", probe, entrypoint="python")
    assert result.returncode == 0, result.stderr
    torch_version, vllm_version, tcmalloc, cuda = result.stdout.split()[-4:]
    assert torch_version.endswith("+cpu")
    assert vllm_version
    assert tcmalloc == "True", "LD_PRELOAD did not load tcmalloc"
    assert cuda == "False"
