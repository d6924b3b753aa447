"""The launcher's pure parts: exit status, the meter's command line, the config watcher's reload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness.envtest import free_port
from model_garden.api.contracts import (
    Identity,
    ServedArtifact,
    ServingConfig,
    ServingPorts,
    write_document,
)
from model_garden.api.inferencedeployment import InferenceDeploymentSpec
from model_garden.serving.apikey import KeyFileWatch, resolve_api_key, rotated
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


# -- API key: file over env, rotation restarts vLLM ---------------------------------------------


def test_the_key_file_wins_over_the_env_and_falls_back_when_empty(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    env = {"MODEL_GARDEN_API_KEY": "from-env"}
    assert resolve_api_key(None, "MODEL_GARDEN_API_KEY", env) == "from-env"
    assert resolve_api_key(str(key_file), "MODEL_GARDEN_API_KEY", env) == "from-env"  # missing
    key_file.write_text("from-file\n")
    assert resolve_api_key(str(key_file), "MODEL_GARDEN_API_KEY", env) == "from-file"
    key_file.write_text("  \n")
    assert resolve_api_key(str(key_file), "MODEL_GARDEN_API_KEY", env) == "from-env"
    assert resolve_api_key(None, "MODEL_GARDEN_API_KEY", {}) is None


def test_restart_only_for_a_new_readable_key() -> None:
    assert rotated("old", "new")
    assert rotated(None, "first")
    assert not rotated("same", "same")
    assert not rotated("old", None)  # unreadable or empty mid-swap: keep serving with the old key


def test_key_file_watch_reports_each_new_key_once(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("k1")
    watch = KeyFileWatch(str(key_file), "k1")
    assert watch.poll() is None
    key_file.write_text("k2")
    assert watch.poll() == "k2" and watch.poll() is None
    key_file.unlink()  # the kubelet swapping the symlink
    assert watch.poll() is None
    key_file.write_text("k2")
    assert watch.poll() is None
    assert KeyFileWatch(None, "k").poll() is None


def test_static_adapters_are_not_loaded_at_run_time(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    first = config([ServedArtifact(name="a", path="/a")])
    write_document(first, path)
    watcher = ConfigWatcher(path, first, api_key=None)
    watcher.ready = True  # nothing listens on the port: any load attempt would be an HTTP error
    write_document(config([ServedArtifact(name="b", path="/b")]), path)
    watcher.step()
    assert [a.name for a in watcher.loaded] == ["a"]
    assert watcher.desired == watcher.loaded  # not retried every second: the pods roll


FAKE_VLLM = """#!/bin/sh
# Stands in for `python -m vllm...`: records what it was given, then serves nothing.
echo "key=${VLLM_API_KEY:-none} env=${MODEL_GARDEN_API_KEY:-none} argv=$*" >> "$FAKE_VLLM_LOG"
exec sleep 120
"""


def test_a_rotated_key_file_restarts_vllm_with_the_new_key_in_its_environment(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE_VLLM)
    fake.chmod(0o755)
    log = tmp_path / "vllm.log"
    key_file = tmp_path / "api-key"
    key_file.write_text("key-one")
    cfg = config().model_copy(
        update={"api_key_file": str(key_file), "dynamic_adapters": True, "device": "cpu"}
    )
    cfg.ports = ServingPorts(api=free_port(), meter=free_port())
    path = tmp_path / "config.json"
    write_document(cfg, path)
    env = {**os.environ, "FAKE_VLLM_LOG": str(log), "MODEL_GARDEN_API_KEY": "stale-env-key"}
    argv = [sys.executable, "-m", "model_garden.serving", "--config", str(path), "--no-meter"]
    proc = subprocess.Popen([*argv, "--python", str(fake)], env=env, stderr=subprocess.PIPE)
    try:
        _wait(lambda: log.exists() and log.read_text().count("key=") == 1)
        key_file.write_text("key-two")
        _wait(lambda: log.read_text().count("key=") == 2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143  # the fake vLLM's status: killed by the forwarded SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    starts = log.read_text().splitlines()
    assert starts[0].startswith("key=key-one env=none ")
    assert starts[1].startswith("key=key-two env=none ")
    assert all("key-" not in line.partition(" argv=")[2] for line in starts)
    assert proc.stderr is not None and "restarting vLLM" in proc.stderr.read().decode()


def test_dynamic_adapters_without_a_key_refuse_to_start(tmp_path: Path) -> None:
    cfg = config().model_copy(update={"dynamic_adapters": True, "device": "cpu"})
    path = tmp_path / "config.json"
    write_document(cfg, path)
    env = {k: v for k, v in os.environ.items() if k != "MODEL_GARDEN_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "model_garden.serving", "--config", str(path), "--no-meter"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "dynamicAdapters" in result.stderr and "API key" in result.stderr


def _wait(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not met in {timeout}s")
