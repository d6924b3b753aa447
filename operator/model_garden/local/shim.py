"""``python -m model_garden.local.shim POD_DIR``: run one local pod's container and record its exit.

Started by :func:`model_garden.local.pods.start` in a session of its own, so the container
outlives the command that started it. It reads ``launch.json`` (argv, env, log), runs the
command with its output in the pod's log, forwards SIGTERM (the pod's grace period, then
SIGKILL, as a kubelet does) and writes ``exit.json`` atomically when the command ends.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from model_garden.api.common import utcnow
from model_garden.operator.status import timestamp

from .store import write_atomic


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    launch = json.loads((folder / "launch.json").read_text(encoding="utf-8"))
    with open(launch["log"], "ab") as log:
        try:
            proc = subprocess.Popen(
                launch["argv"], env=launch["env"], stdout=log, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            log.write(f"cannot start {launch['argv'][:1]}: {exc}\n".encode())
            write_atomic(folder / "exit.json", json.dumps({"exitCode": 128, "finishedAt": _now()}))
            return 0

        def terminate(_signum: int, _frame: Any) -> None:
            proc.send_signal(signal.SIGTERM)
            timer = threading.Timer(float(launch.get("grace", 30)), proc.kill)
            timer.daemon = True
            timer.start()

        signal.signal(signal.SIGTERM, terminate)
        signal.signal(signal.SIGINT, terminate)
        code = proc.wait()
    # A signal's death is reported as the shell does (128 + signal), as the kubelet shows it.
    exit_code = code if code >= 0 else 128 - code
    write_atomic(folder / "exit.json", json.dumps({"exitCode": exit_code, "finishedAt": _now()}))
    return 0


def _now() -> str:
    return timestamp(utcnow())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
