"""``mg deploy --local``, ``mg chat`` and ``mg serve``: the operator's InferenceDeployment planner
in local mode, its server pod (the serving launcher: vLLM + meter) a local process, queried
with the official ``openai`` client and with ``mg chat``, one-shot and streamed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_home import CLI, PROMPT, mg
from openai import OpenAI

from harness.runtime import ctrl_c_reaches_python
from model_garden.demo.data import alpaca_rows, write_jsonl
from model_garden.local import pods
from model_garden.local.store import LocalStore

pytestmark = pytest.mark.ml


def servers(home: Path) -> list[dict[str, Any]]:
    store = LocalStore(home)
    return [
        p
        for p in store.list_raw("Pod")
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "server"
    ]


@pytest.fixture(scope="module")
def served(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A version trained with ``mg train --local --wait`` and deployed with ``mg deploy --wait``."""
    root = tmp_path_factory.mktemp("cli-serving")
    data = write_jsonl(root / "pets.jsonl", alpaca_rows(300))
    env = {
        **os.environ,
        "MODEL_GARDEN_HOME": str(root / "home"),
        "MODEL_GARDEN_CONFIG": str(root / "config.yaml"),
        "KUBECONFIG": str(root / "no-kubeconfig"),
    }
    trained = mg(
        env, "train", "--local", "--base-model", str(tiny_model), "--dataset", str(data),
        "--format", "alpaca", "--method", "full", "--max-steps", "40", "--learning-rate", "3e-3",
        "--max-seq-length", "128", "--batch-size", "8", "--model", "pets", "--name", "pets-ft",
        "--wait",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    deployed = mg(
        env,
        "deploy",
        "pets-v1",
        "--local",
        "--max-model-len",
        "256",
        "--dtype",
        "float32",
        "--wait",
    )
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
    match = re.search(r"^serving pets-v1 at (http://127\.0\.0\.1:\d+/v1)$", deployed.stdout, re.M)
    assert match, deployed.stdout
    try:
        yield {"env": env, "home": root / "home", "endpoint": match.group(1)}
    finally:  # a failed test must not leave a vLLM server running
        store = LocalStore(root / "home")
        for pod in store.list_raw("Pod"):
            pods.stop(store, pod["metadata"]["name"], grace=30)


def test_the_official_client_gets_answers_one_shot_and_streamed(served: dict[str, Any]) -> None:
    client = OpenAI(base_url=served["endpoint"], api_key="unused")
    messages: Any = [{"role": "user", "content": PROMPT}]
    reply = client.chat.completions.create(
        model="pets", messages=messages, max_tokens=16, temperature=0
    )
    text = reply.choices[0].message.content or ""
    assert text.strip() and reply.usage is not None and reply.usage.total_tokens > 0
    stream = client.chat.completions.create(
        model="pets", messages=messages, max_tokens=16, temperature=0, stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == text, "greedy decoding: the stream says what the one-shot said"
    served["text"] = text


def test_mg_chat_one_shot_and_streamed_say_the_same(served: dict[str, Any]) -> None:
    env = served["env"]
    args = ("chat", "pets", PROMPT, "--local", "--temperature", "0", "--max-tokens", "16")
    one = mg(env, *args, timeout=120)
    streamed = mg(env, *args, "--stream", timeout=120)
    assert one.returncode == streamed.returncode == 0, one.stderr + streamed.stderr
    assert one.stdout.strip() and one.stdout == streamed.stdout
    if "text" in served:
        assert one.stdout.strip() == served["text"].strip()
    by_url = mg(
        env,
        "chat",
        served["endpoint"],
        PROMPT,
        "--model",
        "pets",
        "--temperature",
        "0",
        "--max-tokens",
        "16",
    )
    assert by_url.returncode == 0 and by_url.stdout == one.stdout


def test_mg_batch_offline_runs_the_version_on_vllms_offline_engine(
    served: dict[str, Any], tmp_path: Path
) -> None:
    requests = tmp_path / "requests.jsonl"
    bodies = [
        {"model": "pets", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8},
        {"model": "pets", "prompt": "The cat is", "max_tokens": 8},
        {"model": "pets", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8},
    ]
    urls = ["/v1/chat/completions", "/v1/completions", "/v1/chat/completions"]
    requests.write_text(
        "".join(
            json.dumps({"custom_id": f"r{i}", "method": "POST", "url": url, "body": body}) + "\n"
            for i, (url, body) in enumerate(zip(urls, bodies, strict=True))
        )
    )
    out = tmp_path / "results.jsonl"
    ran = mg(served["env"], "batch", "pets-v1", "--offline", str(requests), str(out), "-o", "json")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    doc = json.loads(ran.stdout)
    assert (doc["succeeded"], doc["failed"], doc["carbonSource"]) == (3, 0, "offline-engine")
    assert doc["carbon"]["energyJoules"] > 0 and doc["completionTokens"] > 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["custom_id"] for r in results] == ["r0", "r1", "r2"], "input order kept"
    assert all(r["response"]["status_code"] == 200 for r in results)
    assert json.loads((tmp_path / "results.jsonl.summary.json").read_text()) == doc
    version = json.loads(mg(served["env"], "versions", "get", "pets-v1", "-o", "json").stdout)
    batch = version["status"]["carbonByOperation"]["batch"]
    assert batch["count"] == 1 and batch["energyKwh"] * 3.6e6 >= doc["carbon"]["energyJoules"]


def test_the_deployment_reports_its_serving_carbon(served: dict[str, Any]) -> None:
    listed = mg(served["env"], "deployments", "list", "--local", "-o", "json")
    (idep,) = json.loads(listed.stdout)["items"]
    ready = next(c for c in idep["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Serving")
    assert idep["status"]["endpoint"] == served["endpoint"]
    assert idep["status"]["carbon"]["tokens"] > 0
    assert idep["status"]["carbon"]["energyKwh"] > 0


def test_a_served_version_cannot_be_deleted_and_deleting_the_deployment_stops_it(
    served: dict[str, Any],
) -> None:
    env, home = served["env"], served["home"]
    blocked = mg(env, "versions", "delete", "pets-v1", "--local")
    assert blocked.returncode == 1
    assert "InferenceDeployment(s) pets serve this version" in blocked.stderr
    (server,) = servers(home)
    deleted = mg(env, "deployments", "delete", "pets", "--local")
    assert deleted.returncode == 0, deleted.stderr
    assert not pods.running(LocalStore(home), server["metadata"]["name"])
    assert servers(home) == []
    # the version's deletion, held by its finalizer while served, completes now
    assert json.loads(mg(env, "versions", "list", "--local", "-o", "json").stdout)["items"] == []
    gone = mg(env, "chat", served["endpoint"], "hi", "--model", "pets")
    assert gone.returncode == 4 and gone.stderr.startswith("Error: cannot reach")


def test_serve_runs_in_the_foreground_until_ctrl_c(
    served: dict[str, Any], tiny_model: Path
) -> None:
    env, home = served["env"], served["home"]
    retrain = mg(
        env, "train", "--local", "--base-model", str(tiny_model), "--dataset",
        str(home.parent / "pets.jsonl"), "--format", "alpaca", "--method", "full",
        "--max-steps", "5", "--model", "pets", "--name", "pets-ft2", "--max-seq-length", "128",
        "--wait",
    )  # fmt: skip
    assert retrain.returncode == 0, retrain.stdout[-2000:]
    proc = subprocess.Popen(
        [CLI, "serve", "pets-v2", "--max-model-len", "256", "--dtype", "float32"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_python,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "Ctrl-C stops it" in line:
            break
    assert any(re.match(r"serving pets-v2 at http://127\.0\.0\.1:\d+/v1", ln) for ln in lines), (
        lines
    )
    (server,) = servers(home)
    proc.send_signal(signal.SIGINT)
    # vLLM stops within its grace period; slower on a loaded 2-core machine.
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "inferencedeployment/pets deleted" in out
    assert not pods.running(LocalStore(home), server["metadata"]["name"])
    assert servers(home) == []
