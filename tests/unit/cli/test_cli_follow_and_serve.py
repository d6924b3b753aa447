"""``mg jobs watch``, ``deployments scale``, ``complete`` and ``batch`` on the local store, with
the fake trainer and the fake server (the same stand-ins as train and chat)."""

from __future__ import annotations

import json
from pathlib import Path

from openai import OpenAI

from model_garden.local import pods
from model_garden.local.store import LocalStore

from .conftest import Env, one_line_error, train_args
from .fake_server import ANSWER


def _deployed(env: Env, name: str = "m") -> str:
    deployed = env.run("deploy", "m-v1", "--name", name, "--wait", "--timeout", "60")
    assert deployed.exit_code == 0, deployed.output
    return deployed.stdout.strip().splitlines()[-1].removeprefix("serving m-v1 at ")


def _running_servers(env: Env) -> list[str]:
    store = LocalStore(env.home)
    return [
        p["metadata"]["name"]
        for p in store.list_raw("Pod")
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "server"
        and pods.running(store, p["metadata"]["name"])
    ]


# --- jobs watch ---------------------------------------------------------------------------------


def test_watch_follows_a_running_job_to_success_one_line_per_change(env: Env) -> None:
    started = env.run(*train_args(env, "w"), FAKE_TRAINER_SECONDS="2")
    assert started.exit_code == 0, started.output
    watched = env.run("jobs", "watch", "w")
    assert watched.exit_code == 0, watched.output
    lines = watched.stdout.splitlines()
    progress = [line for line in lines if line.startswith("  step ")]
    assert progress and "[Succeeded]" in progress[-1] and "step 4/4" in progress[-1]
    assert all(a != b for a, b in zip(progress, progress[1:], strict=False)), "a line per change"
    assert "FineTuneJob w succeeded: ModelVersion m-v1" in watched.stdout
    again = env.run("jobs", "watch", "w")  # an ended job: its last state, at once
    assert again.exit_code == 0 and "succeeded" in again.stdout


def test_watch_exits_1_on_a_failed_job_and_3_on_none(env: Env) -> None:
    assert env.run(*train_args(env, "bad"), FAKE_TRAINER_FAIL="1").exit_code == 0
    watched = env.run("jobs", "watch", "bad")
    assert watched.exit_code == 1
    assert "FineTuneJob bad failed: DatasetError" in watched.stdout
    missing = env.run("jobs", "watch", "nope")
    assert missing.exit_code == 3 and "FineTuneJob nope not found" in one_line_error(missing)


# --- deployments scale ----------------------------------------------------------------------------


def test_scale_to_zero_stops_the_server_and_more_than_one_is_refused_locally(
    trained: Env,
) -> None:
    env = trained
    _deployed(env)
    assert len(_running_servers(env)) == 1
    down = env.run("deployments", "scale", "m", "--replicas", "0")
    assert down.exit_code == 0, down.output
    assert down.stdout.strip() == "inferencedeployment/m scaled 1 → 0 replicas"
    store = LocalStore(env.home)
    assert store.get("InferenceDeployment", "m")["spec"]["replicas"] == 0  # type: ignore[index]
    assert store.get("Deployment", "m")["spec"]["replicas"] == 0  # type: ignore[index]
    import time

    deadline = time.monotonic() + 30
    while _running_servers(env) and time.monotonic() < deadline:
        env.run("deployments", "list")
        time.sleep(0.3)
    assert _running_servers(env) == []

    many = env.run("deployments", "scale", "m", "--replicas", "2")
    assert many.exit_code == 2
    assert "local mode serves at most one replica" in one_line_error(many)
    assert store.get("InferenceDeployment", "m")["spec"]["replicas"] == 0  # type: ignore[index]
    assert env.run("deployments", "scale", "nope", "--replicas", "1").exit_code == 3
    assert env.run("deployments", "scale", "m").exit_code == 2  # --replicas is required
    assert env.run("deployments", "scale", "m", "--replicas", "-1").exit_code == 2
    up = env.run("deployments", "scale", "m", "--replicas", "1")
    assert up.exit_code == 0 and "0 → 1" in up.stdout
    assert env.run("deployments", "delete", "m").exit_code == 0


# --- complete and batch ---------------------------------------------------------------------------


def test_complete_by_name_and_url_streamed_and_as_the_openai_client_reads_it(
    trained: Env,
) -> None:
    env = trained
    url = _deployed(env)
    one = env.run("complete", "m", "The cat is")
    streamed = env.run("complete", "m", "The cat is", "--stream", "--stop", ".")
    by_url = env.run("complete", url, "The cat is", "--model", "m")
    piped = env.run("complete", "m", stdin="The cat is")
    for result in (one, streamed, by_url, piped):
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == ANSWER
    # the wire format is OpenAI's: the official client reads the same server the same way
    client = OpenAI(base_url=url, api_key="none")
    assert client.completions.create(model="m", prompt="The cat is").choices[0].text == ANSWER

    no_model = env.run("complete", url, "hi")
    assert no_model.exit_code == 2 and "--model is needed" in one_line_error(no_model)
    down = env.run("complete", "http://127.0.0.1:9/v1", "hi", "--model", "m")
    assert down.exit_code == 4 and "cannot reach http://127.0.0.1:9/v1" in one_line_error(down)
    wrong = env.run("complete", url, "hi", "--model", "other")
    assert wrong.exit_code == 1 and "404" in one_line_error(wrong)
    assert env.run("complete", "nope", "hi").exit_code == 3
    assert env.run("deployments", "delete", "m").exit_code == 0


def _requests(path: Path, model: str = "m") -> Path:
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions" if i % 2 else "/v1/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            if i % 2
            else {"model": model, "prompt": "The cat is"},
        }
        for i in range(5)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_batch_against_a_deployment_metered_and_a_url(trained: Env, tmp_path: Path) -> None:
    env = trained
    url = _deployed(env)
    requests = _requests(tmp_path / "requests.jsonl")
    out = tmp_path / "out" / "results.jsonl"
    ran = env.run("batch", "m", str(requests), str(out), "-o", "json")
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout)
    assert (summary["requests"], summary["succeeded"], summary["failed"]) == (5, 5, 0)
    assert summary["carbonSource"] == "meter"  # the deployment's meter, found by its config
    assert summary["carbon"]["promptTokens"] + summary["carbon"]["generationTokens"] == 50
    assert json.loads(Path(f"{out}.summary.json").read_text()) == summary
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["custom_id"] for r in results] == [f"r{i}" for i in range(5)]  # input order
    first, second = results[0]["response"]["body"], results[1]["response"]["body"]
    assert first["choices"][0]["text"] == ANSWER
    assert second["choices"][0]["message"]["content"] == ANSWER

    table = env.run("batch", url, str(requests), str(out), "--meter", url.rsplit(":", 1)[0] + ":9")
    assert table.exit_code == 4 and "cannot read the meter" in one_line_error(table)
    by_url = env.run("batch", url, str(requests), str(tmp_path / "b.jsonl"))
    assert by_url.exit_code == 0, by_url.output
    assert "5 succeeded, 0 failed" in by_url.stdout and "(machine)" in by_url.stdout
    metered = env.run("batch", "m", str(requests), str(tmp_path / "c.jsonl")).stdout
    assert "g CO2e / 1k tokens" in metered and "(meter)" in metered
    per_1k = next(line for line in metered.splitlines() if line.startswith("g CO2e / 1k"))
    assert per_1k.split()[-1] != "-"  # the meter's figure reaches the table

    failing = _requests(tmp_path / "other.jsonl", model="other")
    partly = env.run("batch", "m", str(failing), str(tmp_path / "f.jsonl"), "-o", "json")
    assert partly.exit_code == 1 and json.loads(partly.stdout)["failed"] == 5
    assert env.run("deployments", "delete", "m").exit_code == 0


def test_batch_input_errors_name_their_lines(env: Env, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"custom_id": "a", "url": "/v1/chat/completions", "body": {"model": "m"}}\nnope\n'
    )
    result = env.run("batch", "http://127.0.0.1:9/v1", str(bad), str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2
    line = one_line_error(result)
    assert "line 1: body.messages must be a list" in line and "line 2: not JSON" in line
    assert not (tmp_path / "o.jsonl").exists()
    missing = env.run("batch", "m", str(tmp_path / "none.jsonl"), str(tmp_path / "o.jsonl"))
    assert missing.exit_code == 2
    down = env.run(
        "batch", "http://127.0.0.1:9/v1", str(_requests(tmp_path / "r.jsonl")), str(tmp_path / "o")
    )
    assert down.exit_code == 4 and "cannot reach http://127.0.0.1:9/v1" in one_line_error(down)
