"""``mg deploy --local``, ``deployments``, ``chat`` and ``serve --detach`` on the local store,
with the fake server standing in for the serving launcher (vLLM is tested in tests/ml)."""

from __future__ import annotations

import json

from model_garden.local import pods
from model_garden.local.store import LocalStore

from .conftest import Env, one_line_error
from .fake_server import ANSWER


def _servers(env: Env) -> list[dict[str, object]]:
    return [
        p
        for p in LocalStore(env.home).list_raw("Pod")
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "server"  # type: ignore[index]
    ]


def test_deploy_chat_account_and_delete(trained: Env) -> None:
    env = trained
    deployed = env.run("deploy", "m-v1", "--wait", "--timeout", "60")
    assert deployed.exit_code == 0, deployed.output
    assert "inferencedeployment/m created" in deployed.stdout
    url = deployed.stdout.strip().splitlines()[-1].removeprefix("serving m-v1 at ")
    assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    # the planner's objects, in the store as on a cluster
    store = LocalStore(env.home)
    for kind in ("Deployment", "Service", "NetworkPolicy"):
        assert [o["metadata"]["name"] for o in store.list_raw(kind)] == ["m"], kind
    config = json.loads(
        next(c for c in store.list_raw("ConfigMap") if c["metadata"]["name"] == "m-serving-config")[
            "data"
        ]["serving-config.json"]
    )
    assert config["model"]["path"] == "/mnt/model-garden/model-garden-artifacts/default/m/v1/merged"
    assert str(config["ports"]["api"]) in url  # the port the planner was given for this pod

    one = env.run("chat", "m", "Describe the pets.")
    streamed = env.run("chat", "m", "Describe the pets.", "--stream")
    assert one.exit_code == streamed.exit_code == 0, one.output + streamed.output
    assert one.stdout.strip() == streamed.stdout.strip() == ANSWER
    assert env.run("chat", url, "hi", "--model", "m").stdout.strip() == ANSWER

    listed = json.loads(env.run("deployments", "list", "-o", "json").stdout)["items"]
    (idep,) = listed
    assert idep["status"]["endpoint"] == url
    assert idep["status"]["carbon"]["tokens"] == 30
    assert env.run("deployments", "list").stdout.splitlines()[-1].split()[:5] == [
        "m", "True", "(Serving)", "1/1", "m-v1",
    ]  # fmt: skip
    assert "g CO2e / 1k tokens" in env.run("deployments", "get", "m").stdout

    blocked = env.run("versions", "delete", "m-v1")
    assert blocked.exit_code == 1
    assert "InferenceDeployment(s) m serve this version" in one_line_error(blocked)
    (server,) = _servers(env)
    assert env.run("deployments", "delete", "m").exit_code == 0
    assert not pods.running(store, server["metadata"]["name"])  # type: ignore[index]
    assert _servers(env) == []
    env.run("versions", "list")
    assert store.get("ModelVersion", "m-v1") is None, "its deletion completed once not served"


def test_serve_detached_and_two_deployments_get_their_own_ports(trained: Env) -> None:
    env = trained
    first = env.run("serve", "m-v1", "--detach", "--name", "one", "--timeout", "60")
    second = env.run("deploy", "m-v1", "--name", "two", "--wait", "--timeout", "60")
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert "stop it: mg deployments delete one --local" in first.stdout
    urls = {
        d["metadata"]["name"]: d["status"]["endpoint"]
        for d in json.loads(env.run("deployments", "list", "-o", "json").stdout)["items"]
    }
    assert len(set(urls.values())) == 2
    piped = env.run("chat", "one", "--system", "Be brief.", stdin="Describe the pets.\n")
    assert piped.exit_code == 0 and piped.stdout.strip() == ANSWER  # the prompt from stdin
    for name in ("one", "two"):
        assert env.run("chat", name, "hi").stdout.strip() == ANSWER
        assert env.run("deployments", "delete", name).exit_code == 0
    assert _servers(env) == []


def test_serving_input_errors(trained: Env) -> None:
    env = trained
    missing = env.run("deploy", "nope-v1")
    assert missing.exit_code == 3 and "ModelVersion nope-v1 not found" in one_line_error(missing)
    many = env.run("deploy", "m-v1", "--replicas", "2")
    assert many.exit_code == 2 and "one replica" in one_line_error(many)
    bad = env.run("deploy", "m-v1", "--name", "9lives")
    assert bad.exit_code == 2 and "metadata.name" in one_line_error(bad)
    cached = env.run("deploy", "m-v1", "--model-cache", "pvc://model-cache")
    assert cached.exit_code == 2 and "--model-cache is for a cluster" in one_line_error(cached)
    no_model = env.run("chat", "http://127.0.0.1:9/v1", "hi")
    assert no_model.exit_code == 2 and "--model is needed" in one_line_error(no_model)
    down = env.run("chat", "http://127.0.0.1:9/v1", "hi", "--model", "m")
    assert down.exit_code == 4 and "cannot reach http://127.0.0.1:9/v1" in one_line_error(down)
    assert env.run("deployments", "get", "nope").exit_code == 3
    assert env.run("chat", "nope", "hi").exit_code == 3
