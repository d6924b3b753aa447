"""The launcher's pure parts: exit status, the meter's command line, the config watcher's reload."""

from __future__ import annotations

from pathlib import Path

from model_garden.api.contracts import (
    Identity,
    ServedArtifact,
    ServingConfig,
    ServingPorts,
    write_document,
)
from model_garden.api.inferencedeployment import InferenceDeploymentSpec
from model_garden.serving.launcher import ConfigWatcher, exit_status, meter_command


def config(
    adapters: list[ServedArtifact] | None = None, max_model_len: int | None = None
) -> ServingConfig:
    spec = InferenceDeploymentSpec(model_version="m-v1")
    spec.engine.max_model_len = max_model_len
    return ServingConfig(
        deployment=Identity(name="chat", namespace="team"),
        spec=spec,
        model=ServedArtifact(name="chat", path="/m"),
        adapters=adapters or [],
        ports=ServingPorts(api=8123, meter=9401),
        country="DEU",
        region="BY",
    )


def test_exit_status_is_what_a_shell_reports() -> None:
    assert exit_status(0) == 0
    assert exit_status(3) == 3
    assert exit_status(-15) == 143  # killed by SIGTERM
    assert exit_status(-9) == 137


def test_meter_command_points_at_vllm_and_the_pod() -> None:
    argv = meter_command(config(), Path("/state/m.json"), 42, 2.0, "/py")
    assert argv[:3] == ["/py", "-m", "model_garden.serving.meter"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert pairs["--vllm-url"] == "http://127.0.0.1:8123"
    assert pairs["--port"] == "9401"
    assert pairs["--pid"] == "42"
    assert pairs["--state-file"] == "/state/m.json"
    assert (pairs["--country"], pairs["--region"]) == ("DEU", "BY")
    assert (pairs["--namespace"], pairs["--deployment"]) == ("team", "chat")


def test_watcher_follows_adapter_changes_and_survives_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    first = config([ServedArtifact(name="a", path="/a")])
    write_document(first, path)
    watcher = ConfigWatcher(path, first, api_key=None)
    watcher._reload()
    assert [a.name for a in watcher.desired] == ["a"]

    write_document(config([ServedArtifact(name="b", path="/b")]), path)
    watcher._reload()
    assert [a.name for a in watcher.desired] == ["b"]

    path.write_text("{ half written")
    watcher._reload()  # logged, adapters kept
    assert [a.name for a in watcher.desired] == ["b"]

    write_document(config([], max_model_len=64), path)  # engine change: only adapters apply
    watcher._reload()
    assert watcher.desired == []
    assert watcher.config.spec.engine.max_model_len == 64
