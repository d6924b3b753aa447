"""Operator latency and scale against envtest (a script, not a test).

1. Latency from FineTuneJob create to its batch/v1 Job being created: p50/p95 over 50 jobs
   created one after the other (the Job is seen through a watch, as a client would see it).
2. 300 FineTuneJobs created at once (8 client threads), all for the same model: the time until
   every one has its Job and ConfigMap, the operator's memory, and the checks that no resource is
   missed and nothing is created twice (each job reserved a distinct version 1..300).

Run: ``uv run python bench/operator_latency.py`` (needs scripts/build-envtest.sh's binaries).
The operator runs in this process; its memory is this process's RSS growth while it reconciles.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "tests")]

from envtest.conftest import install_crds  # noqa: E402
from harness import envtest  # noqa: E402
from model_garden.operator.executor import Executor  # noqa: E402
from model_garden.operator.runner import OperatorThread, load_client  # noqa: E402
from model_garden.operator.settings import OperatorSettings  # noqa: E402

API = "modelgarden.dev/v1alpha1"


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def ftj(name: str, ns: str, model: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "FineTuneJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "baseModel": {"hub": {"id": "org/base"}},
            "dataset": {"uri": "pvc://data/d.jsonl"},
            "output": {"model": model, "storage": "pvc://artifacts"},
        },
    }


class JobWatcher:
    """Records when each Job of a namespace is first seen (ADDED), through one watch."""

    def __init__(self, x: Executor, ns: str) -> None:
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, args=(x, ns), daemon=True)
        self._thread.start()

    def _run(self, x: Executor, ns: str) -> None:
        try:
            self._watch(x, ns)
        except Exception:  # the server went away at the end of the run
            pass

    def _watch(self, x: Executor, ns: str) -> None:
        import json

        path = f"/apis/batch/v1/namespaces/{ns}/jobs"
        request = x.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=[("watch", "true")],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        verb, url, headers, _body, _post = request
        response = x.api.rest_client.pool_manager.request(
            verb, url, headers=headers, preload_content=False
        )
        buffer = b""
        for chunk in response.stream(4096):
            if self._stop:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                event = json.loads(line)
                if event.get("type") == "ADDED":
                    with self.cond:
                        self.seen.setdefault(event["object"]["metadata"]["name"], time.monotonic())
                        self.cond.notify_all()

    def wait(self, name: str, timeout: float = 60) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: name in self.seen, timeout):
                raise TimeoutError(f"Job {name} not seen")
            return self.seen[name]

    def stop(self) -> None:
        self._stop = True


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-jobs", type=int, default=50)
    parser.add_argument("--scale-jobs", type=int, default=300)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="mg-bench-") as tmp, envtest.running(Path(tmp)) as env:
        install_crds(env.api_client)
        x = Executor(env.api_client)
        settings = OperatorSettings(
            max_running_per_namespace=0,
            progress_poll_seconds=3600,
            meter_poll_seconds=3600,
            resync_seconds=3600,
            metrics_port=0,
            health_port=0,
        )
        rss_before, _ = rss_mb()
        op = OperatorThread(load_client(env.kubeconfig), settings).start()
        try:
            # 1. latency
            ns = "latency"
            x._call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
            watcher = JobWatcher(x, ns)
            time.sleep(0.5)
            latencies = []
            for i in range(args.latency_jobs):
                start = time.monotonic()
                x.create(ftj(f"lat-{i}", ns, f"lat-{i}"))
                latencies.append(watcher.wait(f"lat-{i}-train") - start)
            watcher.stop()
            ms = [v * 1000 for v in latencies]
            print(
                f"create->Job latency over {len(ms)}: p50 {pct(ms, 0.5):.0f} ms, p95 {pct(ms, 0.95):.0f} ms, max {max(ms):.0f} ms, mean {statistics.mean(ms):.0f} ms"
            )

            # 2. scale
            ns = "scale"
            x._call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
            n = args.scale_jobs
            rss_start, _ = rss_mb()
            start = time.monotonic()
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: x.create(ftj(f"s-{i:03d}", ns, "bench")), range(n)))
            created = time.monotonic() - start
            deadline = time.monotonic() + 600
            jobs: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                jobs = x.list_objects("batch/v1", "Job", ns)
                if len(jobs) >= n:
                    break
                time.sleep(0.5)
            all_jobs = time.monotonic() - start
            while time.monotonic() < deadline:
                ftjs = x.list_objects(API, "FineTuneJob", ns)
                if sum(1 for f in ftjs if (f.get("status") or {}).get("jobName")) >= n:
                    break
                time.sleep(0.5)
            all_status = time.monotonic() - start
            rss_end, peak = rss_mb()
            cms = x.list_objects("v1", "ConfigMap", ns, "app.kubernetes.io/component=trainer")
            jobs = x.list_objects("batch/v1", "Job", ns)
            per_owner = Counter(
                j["metadata"]["labels"]["modelgarden.dev/fine-tune-job"] for j in jobs
            )
            versions = sorted(
                int(j["metadata"]["labels"]["modelgarden.dev/model-version"].rsplit("-v", 1)[1])
                for j in jobs
            )
            print(
                f"{n} FineTuneJobs created in {created:.1f} s; all Jobs in {all_jobs:.1f} s; all statuses in {all_status:.1f} s"
            )
            print(
                f"operator process RSS: {rss_before:.0f} MiB before start, {rss_start:.0f} MiB before the burst, {rss_end:.0f} MiB after (peak {peak:.0f} MiB)"
            )
            print(
                f"Jobs {len(jobs)}, ConfigMaps {len(cms)}, owners with >1 Job: {sum(1 for c in per_owner.values() if c > 1)}, versions distinct 1..{n}: {versions == list(range(1, n + 1))}"
            )
            errors = {
                k: op.metrics.errors.labels(k)._value.get()
                for k in ("FineTuneJob", "ModelVersion", "InferenceDeployment")
            }
            recon = op.metrics.reconciliations.labels("FineTuneJob")._value.get()
            print(f"reconciliations (FineTuneJob): {recon:.0f}; errors: {errors}")
            missed = n - len(per_owner)
            if missed or any(c > 1 for c in per_owner.values()) or len(cms) != n:
                raise SystemExit(
                    f"FAILED: {missed} missed, duplicates {[k for k, c in per_owner.items() if c > 1]}"
                )
        finally:
            op.stop()


if __name__ == "__main__":
    main()
