"""Ctrl-C during ``mg quickstart``'s training stops the trainer: nothing is left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from harness.runtime import ctrl_c_reaches_python
from model_garden.local import pods
from model_garden.local.store import LocalStore

from .conftest import Env


def test_ctrl_c_stops_the_trainer_and_exits_130(env: Env) -> None:
    base = env.home / "base" / "tiny-llama"  # the embedded model, as if built before
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_garden.cli.main", "quickstart", "--steps", "4"],
        env={**os.environ, **env.vars, "FAKE_TRAINER_SECONDS": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_python,
    )
    store = LocalStore(env.home)
    deadline = time.monotonic() + 60
    while not any(pods.running(store, p["metadata"]["name"]) for p in store.list_raw("Pod")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    (pod,) = store.list_raw("Pod")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=150)  # stop() waits up to the pod grace (90 s)
    assert proc.returncode == 130, out + err
    assert "interrupted: stopping the trainer" in err
    assert not pods.running(store, pod["metadata"]["name"]), "the trainer was left running"
    job = store.get("FineTuneJob", "pets-finetune") or {}
    assert job["spec"]["suspend"] is True
