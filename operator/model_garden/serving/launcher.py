"""The serving pod's entry point: start vLLM and the carbon meter, follow the config, relay signals.

``python -m model_garden.serving --config FILE``. Nothing of ours sits in the request path:
clients talk to vLLM's OpenAI server directly (its ``/health`` is the probe), the meter scrapes
vLLM on the side, and this process only supervises. It exits with vLLM's status.

It restarts vLLM (not the pod, not the meter) when the API key file holds a new key, and with
``dynamic_adapters`` loads and drops adapters as the config changes; without, a changed adapter
list is for the operator to roll out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import httpx
from pydantic import ValidationError

from model_garden.api.contracts import ServedArtifact, ServingConfig, read_document
from model_garden.storage.s3 import StorageError
from model_garden.storage.staging import stage_serving

from .adapters import apply_plan, plan_adapters
from .apikey import KeyFileWatch, resolve_api_key
from .command import ServingError, build_vllm_command, lora_enabled, redact, resolve_device
from .meter import default_state_file

log = logging.getLogger("model_garden.serving")
STOP_GRACE_S = 30.0
KEY_POLL_S = 1.0


def exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def meter_command(
    config: ServingConfig, state_file: Path, pid: int, interval: float, python: str
) -> list[str]:
    return [
        python,
        "-m",
        "model_garden.serving.meter",
        "--vllm-url",
        f"http://127.0.0.1:{config.ports.api}",
        "--host",
        config.host,
        "--port",
        str(config.ports.meter),
        "--state-file",
        str(state_file),
        "--pid",
        str(pid),
        "--interval",
        str(interval),
        "--country",
        config.country,
        *(["--region", config.region] if config.region else []),
        *(["--grid-overrides", json.dumps(config.grid_overrides)] if config.grid_overrides else []),
        "--deployment",
        config.deployment.name,
        "--namespace",
        config.deployment.namespace,
        *(
            ["--energy-source", "kepler", "--prometheus-url", config.kepler_prometheus_url]
            if config.kepler_prometheus_url
            else []
        ),
    ]


class ConfigWatcher:
    """Polls the config file (ConfigMap mounts change by symlink swap, so compare content) and
    brings vLLM's adapters in line with it once vLLM is ready."""

    def __init__(
        self, path: Path, config: ServingConfig, api_key: str | None, interval: float = 1.0
    ) -> None:
        self.path = path
        self.config = config
        self.dynamic = config.dynamic_adapters
        """As vLLM was started: runtime loading cannot be switched on or off without a restart."""
        self.interval = interval
        self.loaded: list[ServedArtifact] = list(config.adapters)
        self.desired: list[ServedArtifact] = list(config.adapters)
        self._digest = self._read_digest()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{config.ports.api}", headers=headers, timeout=120.0
        )
        self.stopping = threading.Event()
        self.ready = False

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def _reload(self) -> None:
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return
        self._digest = digest
        try:
            # s3:// / hf:// adapters are fetched into the cache before vLLM is told of them
            new = stage_serving(read_document(ServingConfig, self.path))
        except (ValidationError, ValueError, OSError, StorageError) as exc:
            log.error("config %s is invalid, keeping the current adapters: %s", self.path, exc)
            return
        old = self.config
        if new.model_copy(update={"adapters": []}) != old.model_copy(update={"adapters": []}):
            log.warning(
                "config changed beyond adapters; only adapters are applied live "
                "(the operator rolls the pod for engine or model changes)"
            )
        self.config = new
        self.desired = list(new.adapters)

    def _is_ready(self) -> bool:
        try:
            return self.client.get("/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def step(self) -> None:
        self._reload()
        if not self.ready:
            self.ready = self._is_ready()
            if self.ready:
                log.info("vLLM is ready on port %d", self.config.ports.api)
            else:
                return
        plan = plan_adapters(self.loaded, self.desired)
        if plan.empty:
            return
        if not self.dynamic:
            log.warning(
                "adapters changed, but dynamic adapters are off: vLLM keeps serving %s until "
                "the pod is replaced",
                [a.name for a in self.loaded] or "no adapter",
            )
            self.desired = list(self.loaded)
            return
        if not lora_enabled(self.config):
            log.error("adapters changed but LoRA is off (--no-enable-lora): restart to serve them")
            self.desired = list(self.loaded)
            return
        for line in plan.describe():
            log.info(line)
        try:
            self.loaded, errors = apply_plan(self.client, plan, self.loaded)
        except httpx.HTTPError as exc:
            log.error("adapter update failed, will retry: %s", exc)
            return
        for error in errors:
            log.error("adapter update: %s", error)
        if errors:
            # Don't retry a bad adapter every second: wait for the next config change.
            self.desired = list(self.loaded)

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.step()
            except Exception:
                log.exception("config watcher step failed")


class Launcher:
    def __init__(self, args: argparse.Namespace) -> None:
        self.config_path: Path = args.config
        self.config = read_document(ServingConfig, self.config_path)
        self.python: str = args.python or sys.executable
        self.device = resolve_device(self.config.device)
        self.api_key = resolve_api_key(self.config.api_key_file, self.config.api_key_env)
        self.key_watch = KeyFileWatch(self.config.api_key_file, self.api_key)
        self.state_file: Path = args.state_file or default_state_file(
            self.config.deployment.namespace, self.config.deployment.name
        )
        self.meter_enabled: bool = not args.no_meter
        self.meter_interval: float = args.meter_interval
        self.vllm: subprocess.Popen[bytes] | None = None
        self.meter: subprocess.Popen[bytes] | None = None
        self.watcher: ConfigWatcher | None = None
        self.stop_signal: int | None = None

    def start_meter(self) -> None:
        argv = meter_command(
            self.config, self.state_file, os.getpid(), self.meter_interval, sys.executable
        )
        self.meter = subprocess.Popen(argv)
        log.info("meter started (pid %d) on port %d", self.meter.pid, self.config.ports.meter)

    def start_vllm(self, cmd_argv: list[str], cmd_env: dict[str, str]) -> None:
        log.info("starting vLLM on %s: %s", self.device, " ".join(redact(cmd_argv)))
        # The key reaches vLLM as VLLM_API_KEY only (a rotated key must not linger under the
        # variable it came in by). Own session: on stop, the whole group (API server + engine
        # core) gets the signal.
        env = {k: v for k, v in os.environ.items() if k != self.config.api_key_env}
        self.vllm = subprocess.Popen(cmd_argv, env={**env, **cmd_env}, start_new_session=True)

    def start_watcher(self) -> None:
        self.watcher = ConfigWatcher(self.config_path, self.config, self.api_key)
        threading.Thread(target=self.watcher.run, name="config-watcher", daemon=True).start()

    def restart_for_key(self, key: str) -> None:
        """A new key in the key file: start vLLM again with it (and the config as it is now)."""
        config = self.watcher.config if self.watcher is not None else self.config
        try:
            cmd = build_vllm_command(config, self.python, self.device, api_key=key)
        except ServingError as exc:
            log.error("API key file changed, but vLLM cannot restart with it: %s", exc)
            return
        log.info("API key file changed: restarting vLLM so the new key takes effect")
        if self.watcher is not None:
            self.watcher.stopping.set()
        self._stop_vllm(signal.SIGTERM)
        self.config, self.api_key = config, key
        self.start_vllm(cmd.argv, cmd.env)
        self.start_watcher()

    def run(self) -> int:
        try:
            self.config = stage_serving(self.config)  # s3:// and hf:// fetched into the cache
            cmd = build_vllm_command(self.config, self.python, self.device, api_key=self.api_key)
        except (ServingError, StorageError) as exc:
            log.error("cannot start: %s", exc)
            return 2
        self.start_vllm(cmd.argv, cmd.env)
        assert self.vllm is not None
        if self.meter_enabled:
            self.start_meter()
        self.start_watcher()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

        meter_restarts = 0
        next_key_poll = time.monotonic() + KEY_POLL_S
        while True:
            code = self.vllm.poll()
            if code is not None:
                break
            if self.stop_signal is not None:
                code = self._stop_vllm(self.stop_signal)
                break
            if self.meter is not None and self.meter.poll() is not None and meter_restarts < 5:
                meter_restarts += 1
                log.error("meter exited with %s; restarting it", self.meter.returncode)
                self.start_meter()
            if time.monotonic() >= next_key_poll:
                next_key_poll = time.monotonic() + KEY_POLL_S
                if (key := self.key_watch.poll()) is not None:
                    self.restart_for_key(key)
            time.sleep(0.2)
        if self.watcher is not None:
            self.watcher.stopping.set()
        self._signal_vllm(signal.SIGKILL)  # engine processes a crashed server left behind
        self._stop_meter()
        log.info("vLLM exited with %d", code)
        return exit_status(code)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum

    def _signal_vllm(self, signum: int) -> None:
        assert self.vllm is not None
        try:
            os.killpg(self.vllm.pid, signum)
        except ProcessLookupError:
            pass

    def _stop_vllm(self, signum: int) -> int:
        assert self.vllm is not None
        log.info("forwarding signal %d to vLLM", signum)
        self._signal_vllm(signum)
        try:
            return self.vllm.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("vLLM did not stop in %ss; killing it", STOP_GRACE_S)
            self._signal_vllm(signal.SIGKILL)
            return self.vllm.wait()
        finally:
            self._signal_vllm(signal.SIGKILL)  # engine processes left behind by a crashed server

    def _stop_meter(self) -> None:
        if self.meter is None or self.meter.poll() is not None:
            return
        self.meter.terminate()
        try:
            self.meter.wait(10)
        except subprocess.TimeoutExpired:
            self.meter.kill()
            self.meter.wait()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m model_garden.serving", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="A ServingConfig JSON file.")
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="Meter totals (default $MODEL_GARDEN_METER_STATE or a temp file; use a volume).",
    )
    parser.add_argument("--no-meter", action="store_true", help="Run vLLM without the meter.")
    parser.add_argument("--meter-interval", type=float, default=1.0)
    parser.add_argument(
        "--python", default=None, help="Python with vLLM (default: this interpreter)."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s launcher %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        launcher = Launcher(args)
    except (ValidationError, ValueError, OSError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    return launcher.run()
