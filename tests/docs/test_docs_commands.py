"""Every command and snippet of the audience pages and the kind quickstart is tested.

Shell commands run for real here (the CLI, helm with the real binary, kubectl against a real
Kubernetes 1.20 API server with the CRDs) or are in ``rules.CANNOT_RUN`` with the reason; a
command in neither fails. YAML snippets are validated by what reads them (pydantic models, the
admin policy model, the chart's schema, kind's fields, the API server); Python snippets (the
`openai` client) run against a stand-in endpoint that records what they sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import envtest

from . import rules
from .conftest import kube_tools
from .extract import DOCS, HEREDOC, PAGES, REPO, Block, Command, all_blocks, all_commands, blocks
from .snippets import MODELS, check_document, check_kind_cluster

pytestmark = [pytest.mark.docs, pytest.mark.envtest]

COMMANDS = all_commands()
RUNNABLE = [c for c in COMMANDS if rules.cannot_run(c.text) is None]
YAML_BLOCKS = [b for b in all_blocks() if b.lang == "yaml"]
PYTHON_BLOCKS = [b for b in all_blocks() if b.lang == "python"]


def test_the_pages_exist_and_have_commands() -> None:
    for page in PAGES:
        assert any(b.lang in {"sh", "bash"} for b in blocks(page)), f"{page}: no shell block"


def test_every_command_is_run_or_allow_listed_with_a_reason() -> None:
    uncovered = [
        f"{c.id}: {c.text}"
        for c in COMMANDS
        if rules.cannot_run(c.text) is None and rules.plan(c.text) is None
    ]
    assert not uncovered, (
        "documented commands that no test runs and that are not in rules.CANNOT_RUN "
        "(make them runnable here, or allow-list them with the reason):\n" + "\n".join(uncovered)
    )
    unused = [p for p, _ in rules.CANNOT_RUN if not any(re.search(p, c.text) for c in COMMANDS)]
    assert not unused, f"allow-list entries that match no documented command: {unused}"


def _run(script: str, env: dict[str, str], cwd: Path, stdin: str | None) -> str:
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        input=stdin, capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, (
        f"`{script}` exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-3000:]}"
    )
    return proc.stdout


@pytest.mark.parametrize("command", RUNNABLE, ids=[c.id for c in RUNNABLE])
def test_command_runs(command: Command, shell_env: dict[str, str], workdir: Path) -> None:
    """In page order, as a user would type them (later commands see what earlier ones made)."""
    plan = rules.plan(command.text)
    assert plan is not None, command.text
    # A heredoc's body is the command's stdin: the marker goes, the body is piped in.
    script = HEREDOC.sub("", plan.script) if command.stdin is not None else plan.script
    out = _run(script, shell_env, workdir, command.stdin)
    if plan.how == "render":
        # What install/upgrade would send: every object parses and names a kind.
        docs = [d for d in yaml.safe_load_all(out) if d]
        assert docs and all("kind" in d and "apiVersion" in d for d in docs), plan.script


def test_kind_config_and_the_names_the_quickstart_uses() -> None:
    config = yaml.safe_load((REPO / "kind-config.yaml").read_text(encoding="utf-8"))
    name = check_kind_cluster(config)
    mounts = [m for n in config["nodes"] for m in n.get("extraMounts", [])]
    assert {
        "hostPath": "/tmp/model-garden-kind",
        "containerPath": "/var/local-path-provisioner",
    } in mounts
    texts = [c.text for c in COMMANDS if c.page == "quickstart-kind.md"]
    assert "kind create cluster --config kind-config.yaml" in texts
    assert f"mkdir -p {mounts[0]['hostPath']}" in texts
    cpu_loads = [t for t in texts if t.startswith("kind load docker-image") and "runtime-cpu" in t]
    assert cpu_loads and all(f"--name {name} " in t for t in cpu_loads), cpu_loads
    assert f"kubectl cluster-info --context kind-{name}" in texts


def _yaml_docs(block: Block) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(block.text) if d is not None]


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=[f"{b.page}:{b.line}" for b in YAML_BLOCKS])
def test_yaml_snippet_validates(
    block: Block, shell_env: dict[str, str], workdir: Path, tmp_path: Path
) -> None:
    docs = _yaml_docs(block)
    assert docs, "empty YAML block"
    for doc in docs:
        check_document(doc, block.text, kube_tools() / "helm", tmp_path)
        if doc.get("kind") in MODELS:
            # And the API server's schema takes it (CEL aside: 1.20 has none).
            # JSON, so the types are exactly the snippet's ("2e-4" stays a string).
            manifest = tmp_path / "resource.json"
            manifest.write_text(json.dumps(doc), encoding="utf-8")
            _run(f"kubectl apply --dry-run=server -f {manifest}", shell_env, workdir, None)


def test_heredoc_manifests_validate() -> None:
    """Resources written inline (`kubectl apply -f - <<EOF`, `cat > x.yaml <<EOF`) validate with
    the models too (test_command_runs applies them to the API server)."""
    checked = 0
    for command in COMMANDS:
        if not command.stdin or not re.match(
            r"^(kubectl apply -f -|cat > \S+\.ya?ml)", command.text
        ):
            continue
        for doc in yaml.safe_load_all(command.stdin):
            if doc and doc.get("kind") in MODELS:
                MODELS[doc["kind"]].model_validate(doc)
                checked += 1
    assert checked, "no inline custom resource found: the extraction is broken"


def _seed_script() -> str:
    (seed,) = [c for c in COMMANDS if c.stdin and "name: seed-artifacts" in c.stdin]
    job = yaml.safe_load(seed.stdin or "")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sh", "-c"]
    return str(container["args"][0])


def test_the_seed_job_script_writes_what_the_samples_read(tmp_path: Path) -> None:
    """The quickstart's seeding Job script, run with the CPU runtime's python as the CPU image
    would, onto a folder standing for the claim; then the samples' URIs resolve on it and the
    dataset validates with the CLI."""
    runtime = os.environ.get("MODEL_GARDEN_RUNTIME_PYTHON")
    if not runtime:
        pytest.fail(
            'MODEL_GARDEN_RUNTIME_PYTHON is not set: eval "$(scripts/build-cpu-runtime.sh)"'
        )
    claim = tmp_path / "claim"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # A wrapper, not a symlink: a venv's python finds its packages from its own path.
    (bindir / "python").write_text(f'#!/bin/sh\nexec {runtime} "$@"\n', encoding="utf-8")
    (bindir / "python").chmod(0o755)
    script = _seed_script().replace("/artifacts", str(claim))
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO / "operator")}  # fmt: skip
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for sample in ("finetunejob-minimal.yaml", "modelversion-minimal.yaml"):
        text = (REPO / "crds" / "samples" / sample).read_text(encoding="utf-8")
        for uri in re.findall(r"pvc://model-garden-artifacts/(\S+)", text):
            assert (claim / uri).exists(), (
                f"{sample} reads {uri}, which the seed Job does not write"
            )
    assert (claim / "imports" / "my-model" / "config.json").is_file()
    rows = (claim / "datasets" / "pets.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 400
    report = subprocess.run(
        [str(Path(sys.executable).parent / "model-garden"), "dataset", "validate",
         str(claim / "datasets" / "pets.jsonl"), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["format"] == "alpaca"


class _Recorder(BaseHTTPRequestHandler):
    """A stand-in OpenAI endpoint: answers chat and completion calls, records what was sent."""

    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
        self._answer({"object": "list", "data": [{"id": "imported", "object": "model",
                                                  "created": 0, "owned_by": "vllm"}]})  # fmt: skip

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        request = json.loads(self.rfile.read(length) or b"{}")
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), **request})
        usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
        if self.path.endswith("/chat/completions"):
            choice = {"index": 0, "finish_reason": "stop",
                      "message": {"role": "assistant", "content": "The fox is red."}}  # fmt: skip
            obj = "chat.completion"
        else:
            choice = {"index": 0, "finish_reason": "stop", "text": "The fox is red."}
            obj = "text_completion"
        self._answer({"id": "x", "object": obj, "created": 0, "model": request.get("model"),
                      "choices": [choice], "usage": usage})  # fmt: skip


@pytest.fixture()
def endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", envtest.free_port()), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", _Recorder.seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"{b.page}:{b.line}" for b in PYTHON_BLOCKS])
def test_python_snippet_runs_against_an_openai_compatible_endpoint(
    block: Block, endpoint: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The snippet as printed, with the official `openai` client, its base URL pointed at the
    stand-in (it checks the client code, not the server: the real server is tests/ml)."""
    address, seen = endpoint
    assert "localhost:8000" in block.text, "snippets talk to the port-forwarded localhost:8000"
    script = tmp_path / "snippet.py"
    script.write_text(block.text.replace("localhost:8000", address), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, check=False, env={**os.environ, "OPENAI_API_KEY": "unused"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = [s for s in seen if s["path"].startswith("/v1/")]
    assert calls, "the snippet sent nothing to /v1/"
    assert all(s.get("model") for s in calls if "completions" in s["path"])
    assert "The fox is red." in proc.stdout


def test_image_names_are_the_ones_built_and_installed() -> None:
    """Images the pages load are those scripts/build-images tags (images/<name>, the package
    version) and the chart's values name."""
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version
    values = (REPO / "charts" / "model-garden" / "values.yaml").read_text(encoding="utf-8")
    named = {m for page in PAGES for m in re.findall(r"ghcr\.io/model-garden/[\w.:-]+",
                                                     (DOCS / page).read_text(encoding="utf-8"))}  # fmt: skip
    assert named
    for image in named:
        repo, _, tag = image.partition(":")
        assert (REPO / "images" / repo.rsplit("/", 1)[1]).is_dir(), f"{image}: no images/ folder"
        assert tag in {"", version[1]}, f"{image}: the build tags {version[1]}"
        assert f"repository: {repo}" in values, f"{image}: not a repository of the chart's values"


def test_docs_links_are_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for page in PAGES:
        assert f"(docs/{page})" in readme, f"README.md does not link docs/{page}"
        assert (DOCS / page).is_file()
