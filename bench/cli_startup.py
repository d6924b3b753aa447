"""CLI start-up and local training latency (a script, not a test).

1. ``mg --help`` against ``python -c pass`` in the same invocation: the median of ``--runs``
   process starts each, and their ratio (the CLI's own cost on top of the interpreter's).
   ``mg version`` and ``mg jobs list --local`` (which imports the models and runs a reconcile
   pass on an empty store) are timed the same way.
2. Time from ``mg train --local --wait`` starting to the first training step it prints, on the
   tiny model (needs the CPU runtime, ``MODEL_GARDEN_RUNTIME_PYTHON``), and to the job's end.

Run: ``uv run python bench/cli_startup.py [--runs 10] [--skip-train]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator")]

from model_garden.demo.data import alpaca_rows, write_jsonl  # noqa: E402
from model_garden.runtime import runtime_env, runtime_python  # noqa: E402

CLI = str(Path(sys.executable).with_name("model-garden"))


def median_seconds(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def startup(runs: int, env: dict[str, str]) -> dict[str, float]:
    python = median_seconds([sys.executable, "-c", "pass"], runs, env)
    help_ = median_seconds([CLI, "--help"], runs, env)
    version = median_seconds([CLI, "version"], runs, env)
    listing = median_seconds([CLI, "jobs", "list", "--local"], runs, env)
    return {
        "python_pass_s": round(python, 3),
        "mg_help_s": round(help_, 3),
        "mg_help_ratio": round(help_ / python, 1),
        "mg_version_s": round(version, 3),
        "mg_jobs_list_local_s": round(listing, 3),
    }


def first_step(work: Path, env: dict[str, str]) -> dict[str, float]:
    model = work / "tiny-llama"
    subprocess.run(
        [runtime_python(), "-m", "model_garden.demo.tiny_model", str(model)],
        env=runtime_env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    data = write_jsonl(work / "pets.jsonl", alpaca_rows(200))
    argv = [CLI, "train", "--local", "--base-model", str(model), "--dataset", str(data)]
    argv += ["--format", "alpaca", "--method", "lora", "--max-steps", "30"]
    argv += ["--max-seq-length", "128", "--name", "bench", "--model", "bench", "--wait"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = None
    for line in proc.stdout:
        match = re.search(r"step (\d+)/", line)
        if first is None and match and int(match.group(1)) >= 1:
            first = time.perf_counter() - start
    code = proc.wait()
    if code != 0 or first is None:
        raise SystemExit(f"train --local exited {code} (first step seen: {first})")
    return {
        "train_to_first_step_s": round(first, 1),
        "train_to_done_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "MODEL_GARDEN_HOME": str(work / "home"),
            "MODEL_GARDEN_CONFIG": str(work / "config.yaml"),
            "KUBECONFIG": str(work / "no-kubeconfig"),
        }
        figures = startup(args.runs, env)
        print(
            f"mg --help: {figures['mg_help_s'] * 1000:.0f} ms, python -c pass:"
            f" {figures['python_pass_s'] * 1000:.0f} ms (×{figures['mg_help_ratio']});"
            f" mg version {figures['mg_version_s'] * 1000:.0f} ms;"
            f" mg jobs list --local {figures['mg_jobs_list_local_s'] * 1000:.0f} ms"
        )
        if not args.skip_train:
            figures.update(first_step(work, env))
            print(
                f"mg train --local: first step after {figures['train_to_first_step_s']} s,"
                f" done (30 LoRA steps, verified) after {figures['train_to_done_s']} s"
            )
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
