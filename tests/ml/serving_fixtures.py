"""Helpers for the serving tests: adapters, configs, and a launcher process with its logs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from harness.envtest import free_port
from harness.runtime import run_runtime
from model_garden.api.contracts import (
    Identity,
    ServedArtifact,
    ServingConfig,
    ServingPorts,
    write_document,
)
from model_garden.api.inferencedeployment import Engine, InferenceDeploymentSpec
from model_garden.runtime import runtime_env, runtime_python

ADAPTER_SCRIPT = """
import sys, torch
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
base = sys.argv[1]
torch.manual_seed(int(sys.argv[2]))
for out in sys.argv[3:]:
    model = AutoModelForCausalLM.from_pretrained(base)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                            init_lora_weights=False))
    peft.save_pretrained(out)
"""


def make_adapters(base: Path, outs: list[Path], seed: int = 1) -> list[Path]:
    """Fresh (random, non-zero) PEFT LoRA adapters for ``base``, one Python start for all."""
    run_runtime(["-c", ADAPTER_SCRIPT, str(base), str(seed), *map(str, outs)])
    return outs


def serving_config(
    model: Path,
    adapters: list[tuple[str, Path]] | None = None,
    name: str = "tiny",
    api_port: int | None = None,
    meter_port: int | None = None,
    max_model_len: int = 256,
    dynamic_adapters: bool = False,
    api_key_file: Path | None = None,
) -> ServingConfig:
    return ServingConfig(
        dynamic_adapters=dynamic_adapters,
        api_key_file=str(api_key_file) if api_key_file else None,
        deployment=Identity(name="tiny-serving", namespace="test"),
        spec=InferenceDeploymentSpec(
            model_version="tiny-v1",
            engine=Engine(max_model_len=max_model_len, max_lora_rank=8, max_loras=2),
        ),
        model=ServedArtifact(name=name, path=str(model)),
        adapters=[ServedArtifact(name=n, path=str(p)) for n, p in adapters or []],
        ports=ServingPorts(api=api_port or free_port(), meter=meter_port or free_port()),
        host="127.0.0.1",
        country="FRA",
        device="cpu",
    )


class Server:
    """``python -m model_garden.serving --config FILE`` as a process, with its log in a file.

    The API key goes in the config's key file when it names one (as the Secret's mount does in a
    pod), else in the environment.
    """

    def __init__(
        self, config_path: Path, state_file: Path, log_path: Path, api_key: str | None
    ) -> None:
        self.config_path = config_path
        self.state_file = state_file
        self.log_path = log_path
        self.api_key = api_key
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds: list[float] = []

    @property
    def config(self) -> ServingConfig:
        from model_garden.api.contracts import read_document

        return read_document(ServingConfig, self.config_path)

    def write_config(self, config: ServingConfig) -> None:
        write_document(config, self.config_path)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.api}"

    @property
    def meter_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.meter}"

    def start(self, timeout: float = 360) -> None:
        env = runtime_env()
        env.pop("MODEL_GARDEN_API_KEY", None)
        key_file = self.config.api_key_file
        if self.api_key and key_file:
            Path(key_file).write_text(self.api_key)
        elif self.api_key:
            env[self.config.api_key_env] = self.api_key
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    runtime_python(),
                    "-m",
                    "model_garden.serving",
                    "--config",
                    str(self.config_path),
                    "--state-file",
                    str(self.state_file),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"launcher exited with {self.proc.returncode}\n{self.tail()}")
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    self._wait_meter(deadline)
                    self.start_seconds.append(time.monotonic() - started)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise AssertionError(f"vLLM not healthy after {timeout}s\n{self.tail()}")

    def _wait_meter(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.meter_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"meter not up\n{self.tail()}")

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM the launcher (it forwards to vLLM and stops the meter); its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def processes_running(module: str) -> dict[int, str]:
    """pid -> command line (NULs as spaces) of the processes whose command line names ``module``."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if module in cmdline:
            found[int(proc.name)] = cmdline
    return found


def carbon(meter_url: str) -> dict[str, object]:
    response = httpx.get(f"{meter_url}/carbon", timeout=5)
    response.raise_for_status()
    doc: dict[str, object] = response.json()
    return doc


def wait_for(predicate: object, timeout: float = 30, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s")
