"""Where the documented commands run: a scratch folder that looks like the repository root, a
real Kubernetes 1.20 API server with the CRDs installed, and the real helm and kubectl."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from envtest.conftest import install_crds
from harness import envtest

from .extract import REPO

# What the commands read from the repository (relative paths, as a user in a checkout has them).
LINKED = ("charts", "crds", "deploy", "scripts", "kind-config.yaml", "pyproject.toml")


def quickstart_install() -> list[str]:
    """The quickstart's `helm install` (step 3), as the docs print it."""
    from .extract import all_commands

    (text,) = [
        c.text
        for c in all_commands()
        if c.page == "quickstart-kind.md"
        and c.text.startswith("helm install mg ")
        and "values-cpu.yaml" in c.text
    ]
    return shlex.split(text)


@pytest.fixture(scope="module")
def kube() -> Iterator[envtest.KubeEnv]:
    """API server + controllers (no kubelet, no scheduler) with the chart installed for real by
    the quickstart's `helm install`, plus `--server-side=false` as docs/chart.md says for a
    server before 1.25 (this one is 1.20): the CRDs, the operator's RBAC, the policy ConfigMap
    and the artifact claim exist for the commands that follow."""
    with tempfile.TemporaryDirectory(prefix="docs-envtest-") as tmp:
        with envtest.running(Path(tmp), controller_manager=False) as env:
            args = quickstart_install()
            proc = subprocess.run(
                [str(kube_tools() / "helm"), *args[1:], "--server-side=false",
                 "--kubeconfig", str(env.kubeconfig)],
                cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert proc.returncode == 0, f"{shlex.join(args)}:\n{proc.stderr}"
            install_crds(env.api_client)  # waits until the chart's CRDs are Established
            yield env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder with the repository's charts, crds, … linked in: commands run from a
    checkout's root, and files the docs create (datasets, configs) land here, not in the repo."""
    root = tmp_path_factory.mktemp("docs-cwd")
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    return root


def kube_tools() -> Path:
    tools = os.environ.get("MODEL_GARDEN_KUBE_TOOLS")
    if not tools or not (Path(tools) / "helm").is_file() or not (Path(tools) / "kubectl").is_file():
        raise RuntimeError(
            "MODEL_GARDEN_KUBE_TOOLS does not name a folder holding helm and kubectl: "
            "run `source scripts/bootstrap.sh`"
        )
    return Path(tools)


@pytest.fixture(scope="module")
def shell_env(workdir: Path, kube: envtest.KubeEnv) -> dict[str, str]:
    """PATH with helm, kubectl and this environment's `model-garden`; KUBECONFIG = envtest; a private
    HOME so helm and kubectl caches stay in the scratch folder."""
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    path = os.pathsep.join(
        [str(kube_tools()), str(Path(sys.executable).parent), os.environ["PATH"]]
    )
    return {
        **os.environ,
        "PATH": path,
        "HOME": str(home),
        "KUBECONFIG": str(kube.kubeconfig),
        "HF_TOKEN": "hf_docs_test_placeholder",
    }
