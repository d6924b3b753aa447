"""The kubelet's part in local mode: run a pod's container as a local process, report its state.

A pod's volumes become folders: a ConfigMap's keys are written into ``pods/<pod>/volumes/<vol>``,
an emptyDir is a folder of the pod's scratch dir (``LocalStore.scratch_dir``: short, under the
system temp dir, for the sake of UNIX socket paths), a PersistentVolumeClaim is the store's
``claims/<claim>`` (with the mount's ``subPath``), and the termination message is
``pods/<pod>/termination-log``. There is no mount namespace, so the container's paths are
translated: in its command, args and env values, and in the JSON documents of mounted
ConfigMaps (the TrainingConfig names the pod's paths), every path under a mount point is
rewritten to the folder behind it. ``readOnly`` is not enforced; resources, security contexts
and images do not apply (the command runs in the ML runtime's Python, see
:mod:`model_garden.runtime`). A ``secretKeyRef`` variable is taken from the environment
variable of the same name, if set (local mode has no Secrets).

The process runs under a small shim (:mod:`.shim`) in its own session, so it outlives the
command that started it; the shim records its exit code, which :func:`observe` reads back into
the pod's ``status`` exactly as a kubelet writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from model_garden.api.common import utcnow
from model_garden.operator.status import timestamp
from model_garden.runtime import runtime_env, runtime_python

from .store import LocalStore, write_atomic

LAUNCH_FILE = "launch.json"
EXIT_FILE = "exit.json"
PID_FILE = "shim.pid"
LOG_FILE = "log"
TERMINATION_FILE = "termination-log"
LOG_FALLBACK_LINES = 80
"""FallbackToLogsOnError: the kubelet keeps the last 80 lines (or 2048 bytes) of the log."""
LOG_FALLBACK_BYTES = 2048


def _translate(value: str, mapping: list[tuple[str, str]]) -> str:
    """``value`` with the longest mount point it lies under replaced by its folder."""
    for inside, outside in mapping:
        if value == inside or value.startswith(inside + "/"):
            return outside + value[len(inside) :]
    return value


def _translate_doc(doc: Any, mapping: list[tuple[str, str]]) -> Any:
    if isinstance(doc, str):
        return _translate(doc, mapping)
    if isinstance(doc, list):
        return [_translate_doc(v, mapping) for v in doc]
    if isinstance(doc, dict):
        return {k: _translate_doc(v, mapping) for k, v in doc.items()}
    return doc


def path_mapping(
    store: LocalStore, pod: dict[str, Any], container: dict[str, Any], scratch: bool = True
) -> list[tuple[str, str]]:
    """(path in the container, folder on this machine), longest first.

    ``scratch=False`` leaves emptyDirs out: a ``file://`` URI in a config names a path of this
    machine (local mode's meaning), even under ``/tmp``; emptyDirs are only translated where
    the builders use them, in env values (HOME, caches).
    """
    name = pod["metadata"]["name"]
    volumes = {v["name"]: v for v in (pod["spec"].get("volumes") or [])}
    pairs = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"], {})
        if "persistentVolumeClaim" in volume:
            root = store.claim_dir(volume["persistentVolumeClaim"]["claimName"])
        elif "configMap" in volume:
            root = store.pod_dir(name) / "volumes" / mount["name"]
        elif scratch:
            root = store.scratch_dir(name) / mount["name"]
        else:
            continue
        sub = mount.get("subPath") or ""
        pairs.append((mount["mountPath"].rstrip("/"), str(root / sub if sub else root)))
    message = container.get("terminationMessagePath") or "/dev/termination-log"
    pairs.append((message, str(store.pod_dir(name) / TERMINATION_FILE)))
    return sorted(pairs, key=lambda p: len(p[0]), reverse=True)


def _materialise_volumes(
    store: LocalStore,
    pod: dict[str, Any],
    container: dict[str, Any],
    mapping: list[tuple[str, str]],
) -> None:
    """Create every volume's folder, and a claim's subPath folder when missing (the kubelet
    does); write ConfigMap keys, JSON documents with their paths translated."""
    name = pod["metadata"]["name"]
    volumes = {v["name"]: v for v in (pod["spec"].get("volumes") or [])}
    for volume in volumes.values():
        if "persistentVolumeClaim" in volume:
            store.claim_dir(volume["persistentVolumeClaim"]["claimName"]).mkdir(
                parents=True, exist_ok=True
            )
            continue
        root = store.pod_dir(name) / "volumes" if "configMap" in volume else store.scratch_dir(name)
        folder = root / volume["name"]
        folder.mkdir(parents=True, exist_ok=True)
        if "configMap" in volume:
            config_map = store.get("ConfigMap", volume["configMap"]["name"]) or {}
            for key, text in (config_map.get("data") or {}).items():
                try:
                    text = json.dumps(_translate_doc(json.loads(text), mapping), indent=2)
                except ValueError:
                    pass  # not JSON: written as it is
                write_atomic(folder / key, text)
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"], {})
        if "persistentVolumeClaim" in volume and mount.get("subPath"):
            path = store.claim_dir(volume["persistentVolumeClaim"]["claimName"]) / mount["subPath"]
            if not path.exists():
                path.mkdir(parents=True)


def _env(container: dict[str, Any], mapping: list[tuple[str, str]]) -> dict[str, str]:
    # A pod's /tmp is its own (an emptyDir): programs that use the temp dir (the meter keeps
    # its totals there) must not share this machine's /tmp with other pods.
    env: dict[str, str] = {}
    if any(m.get("mountPath") == "/tmp" for m in container.get("volumeMounts") or []):
        env["TMPDIR"] = _translate("/tmp", mapping)
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = _translate(str(var["value"]), mapping)
        elif "secretKeyRef" in (var.get("valueFrom") or {}) and var["name"] in os.environ:
            env[var["name"]] = os.environ[var["name"]]
    return runtime_env(extra=env)


def _argv(container: dict[str, Any], mapping: list[tuple[str, str]]) -> list[str]:
    argv = [_translate(str(a), mapping) for a in container.get("command") or []]
    argv += [_translate(str(a), mapping) for a in container.get("args") or []]
    if argv and argv[0] in ("python", "python3"):
        argv[0] = runtime_python(required=False)
    return argv


def start(store: LocalStore, pod: dict[str, Any]) -> dict[str, Any]:
    """Start the pod's (single) container under the shim; return the pod with a Running status."""
    name = pod["metadata"]["name"]
    (container,) = pod["spec"]["containers"][:1]
    mapping = path_mapping(store, pod, container, scratch=False)
    folder = store.pod_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    _materialise_volumes(store, pod, container, mapping)
    launch = {
        "argv": _argv(container, mapping),
        "env": _env(container, path_mapping(store, pod, container)),
        "log": str(folder / LOG_FILE),
        "grace": int(pod["spec"].get("terminationGracePeriodSeconds") or 30),
    }
    write_atomic(folder / LAUNCH_FILE, json.dumps(launch, indent=2))
    shim = subprocess.Popen(
        [sys.executable, "-m", "model_garden.local.shim", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "shim.log").open("ab"),
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": runtime_env()["PYTHONPATH"]},
    )
    write_atomic(folder / PID_FILE, str(shim.pid))
    now = timestamp(utcnow())
    pod["status"] = {
        "phase": "Running",
        "podIP": "127.0.0.1",
        "startTime": now,
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [
            {
                "name": container["name"],
                "ready": "readinessProbe" not in container,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
        ],
    }
    return pod


def _alive(pid: int, folder: Path) -> bool:
    """The shim of this pod still runs (its command line names the pod folder)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(folder) in cmdline


def shim_pid(store: LocalStore, name: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int((store.pod_dir(name) / PID_FILE).read_text())
    return None


def running(store: LocalStore, name: str) -> bool:
    pid = shim_pid(store, name)
    return pid is not None and _alive(pid, store.pod_dir(name))


def _message(folder: Path, exit_code: int, policy: str) -> str:
    try:
        text = (folder / TERMINATION_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    if text.strip() or exit_code == 0 or policy != "FallbackToLogsOnError":
        return text
    with contextlib.suppress(OSError):
        lines = (folder / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-LOG_FALLBACK_LINES:])[-LOG_FALLBACK_BYTES:]
    return ""


def observe(store: LocalStore, pod: dict[str, Any]) -> dict[str, Any] | None:
    """The pod's status as a kubelet would write it now; None when it has not changed."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return None
    name = pod["metadata"]["name"]
    folder = store.pod_dir(name)
    container = pod["spec"]["containers"][0]
    try:
        ended = json.loads((folder / EXIT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        ended = None
    if ended is None:
        if running(store, name):
            return None
        ended = {"exitCode": 137, "finishedAt": timestamp(utcnow()), "lost": True}
    code = int(ended["exitCode"])
    policy = container.get("terminationMessagePolicy") or "File"
    message = _message(folder, code, policy)
    if ended.get("lost") and not message:
        message = "the local process ended without an exit status (killed?)"
    previous = (status.get("containerStatuses") or [{}])[0]
    started = ((previous.get("state") or {}).get("running") or {}).get("startedAt")
    terminated = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "message": message,
        "startedAt": started or ended["finishedAt"],
        "finishedAt": ended["finishedAt"],
    }
    return {
        **status,
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [
            {
                **previous,
                "name": container["name"],
                "ready": False,
                "state": {"terminated": terminated},
            }
        ],
    }


def terminate(store: LocalStore, name: str) -> None:
    """SIGTERM the pod's shim, which forwards it and kills after the pod's grace period."""
    pid = shim_pid(store, name)
    if pid is not None and _alive(pid, store.pod_dir(name)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def stop(store: LocalStore, name: str, grace: float = 90.0) -> None:
    """Terminate the pod and wait for it to end; SIGKILL its process group after ``grace`` s."""
    terminate(store, name)
    pid = shim_pid(store, name)
    folder = store.pod_dir(name)
    if pid is None:
        return
    deadline = time.monotonic() + grace
    while _alive(pid, folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid, folder):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def log_text(store: LocalStore, name: str) -> str:
    try:
        return (store.pod_dir(name) / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
