"""The operator at scale against envtest (issue 14, item 6; a script, not a test).

    uv run python bench/operator_scale.py [--jobs 1000] [--deployments 200] [--namespaces 1 20]

For each namespace layout (all in one namespace, then spread over 20), with the per-namespace
cap off: create the FineTuneJobs (8 client threads) and the InferenceDeployments (all of one
verified ModelVersion per namespace), then report

* create → Job latency p50/p95 (each Job's first sighting through one watch per namespace),
* that every FineTuneJob got exactly one Job and one ConfigMap and every InferenceDeployment
  one Deployment and one Service (none missed, none twice),
* the operator's memory (this process's RSS: the operator runs in it),
* the operator's writes to the API server (every create, patch, delete and event its executor
  sends, counted by verb and resource) per reconciliation during the burst, and in the steady
  state afterwards, when level-based resyncs re-plan everything: a write there is a status
  patch (or event) that changes nothing, and the target is zero.

kopf's own bookkeeping (its watch streams; it keeps no per-object progress annotations with our
settings) is not counted. The ModelVersion of each namespace is verified by writing its verify
pod's termination message, as the envtest tests do: there is no kubelet here.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT / "tests"), str(ROOT / "bench")]

from operator_latency import JobWatcher, ftj, pct, rss_mb  # noqa: E402

from envtest.conftest import install_crds  # noqa: E402
from harness import envtest  # noqa: E402
from model_garden.local.store import merge_patch  # noqa: E402
from model_garden.operator.executor import Executor  # noqa: E402
from model_garden.operator.plan import ObjectRef  # noqa: E402
from model_garden.operator.runner import OperatorThread, load_client  # noqa: E402
from model_garden.operator.settings import OperatorSettings  # noqa: E402

API = "modelgarden.dev/v1alpha1"
DIGEST = "sha256:" + "ab" * 32
WRITES = {"POST", "PATCH", "PUT", "DELETE"}


class WriteCounter:
    """Counts the operator executor's writes by (verb, resource[/subresource])."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.recent: list[tuple[str, str, Any]] = []
        """The last writes (method, path, body): what a steady-state write changed."""
        self.check_noops = False
        """In the steady state: read each status patch's object first and count the patches
        that change nothing (the target is none; a patch that follows a real change counts
        as a write but not as a no-op)."""
        self.noops = 0

    def wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def counted(method: str, path: str, *args: Any, **kw: Any) -> Any:
            if method in WRITES:
                parts = [p for p in path.split("?")[0].split("/") if p]
                resource = _resource(parts)
                body = kw.get("body", args[0] if args else None)
                if self.check_noops and method == "PATCH" and path.endswith("/status"):
                    current = call("GET", path)
                    if merge_patch(current, body) == current:
                        with self.lock:
                            self.noops += 1
                with self.lock:
                    self.counts[(method, resource)] += 1
                    self.recent = [*self.recent[-4:], (method, path, body)]
            return call(method, path, *args, **kw)

        return counted

    def take(self) -> Counter[tuple[str, str]]:
        with self.lock:
            out, self.counts = self.counts, Counter()
            return out


def _resource(parts: list[str]) -> str:
    """``/apis/g/v/namespaces/ns/kind/name/status`` → ``kind/status``."""
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :]
    else:
        rest = parts[3:] if parts[:1] == ["apis"] else parts[2:]
    if not rest:
        return "namespaces"
    return rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")


def model_version(ns: str) -> dict[str, Any]:
    art = {"uri": "pvc://artifacts/m/v1", "format": "merged", "digest": DIGEST, "sizeBytes": 1234}
    return {
        "apiVersion": API,
        "kind": "ModelVersion",
        "metadata": {"name": "m-v1", "namespace": ns},
        "spec": {"model": "m", "version": 1, "artifact": art, "stage": "none"},
    }


def deployment(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "InferenceDeployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"modelVersion": "m-v1", "replicas": 1},
    }


def verify(x: Executor, ns: str) -> None:
    """Play the kubelet for the ModelVersion's verify pod: it hashed the files to DIGEST."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pods = x.list_objects("v1", "Pod", ns, "job-name=m-v1-verify")
        if pods:
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"no verify pod in {ns}")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    report = json.dumps({"sizeBytes": 1234, "digest": DIGEST, "files": 3})
    state = {"terminated": {"exitCode": 0, "reason": "Completed", "message": report,
                            "startedAt": now, "finishedAt": now}}  # fmt: skip
    status = {
        "phase": "Succeeded",
        "conditions": [{"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{"name": "verify", "ready": False, "restartCount": 0,
                               "image": "v", "imageID": "v@sha256:0", "state": state}],
    }  # fmt: skip
    name = pods[0]["metadata"]["name"]
    x.merge_patch(ObjectRef("v1", "Pod", ns, name), {"status": status}, subresource="status")


def wait_until(what: str, done: Callable[[], bool], timeout: float = 900) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if done():
            return time.monotonic() - start
        time.sleep(1)
    raise SystemExit(f"FAILED: {what} not within {timeout:.0f} s")


def run_layout(
    x: Executor, counter: WriteCounter, op: OperatorThread, jobs: int, deployments: int,
    namespaces: int, tag: str, steady_s: float,
) -> None:  # fmt: skip
    names = [f"{tag}-{i:02d}" for i in range(namespaces)]
    for ns in names:
        x.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
        x.create(model_version(ns))
    for ns in names:
        verify(x, ns)
    wait_until(
        "ModelVersions Ready",
        lambda: all(
            any(c["type"] == "Ready" and c["status"] == "True"
                for c in (x.get(ObjectRef(API, "ModelVersion", ns, "m-v1")) or {}).get("status", {}).get("conditions", []))
            for ns in names
        ),
    )  # fmt: skip
    watchers = {ns: JobWatcher(x, ns) for ns in names}
    time.sleep(1)
    counter.take()
    recon_before = {k: op.metrics.reconciliations.labels(k)._value.get() for k in KINDS}
    rss_start, _ = rss_mb()
    started: dict[str, float] = {}

    def create_job(i: int) -> None:
        ns = names[i % namespaces]
        started[f"{ns}/j-{i:04d}"] = time.monotonic()
        x.create(ftj(f"j-{i:04d}", ns, f"m{i % 7}"))

    def create_deployment(i: int) -> None:
        x.create(deployment(f"d-{i:03d}", names[i % namespaces]))

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create_job, range(jobs)))
        list(pool.map(create_deployment, range(deployments)))
    created_s = time.monotonic() - t0

    def counts() -> tuple[int, int, int, int]:
        j = sum(
            len(x.list_objects("batch/v1", "Job", ns, "app.kubernetes.io/component=trainer"))
            for ns in names
        )
        c = sum(
            len(x.list_objects("v1", "ConfigMap", ns, "app.kubernetes.io/component=trainer"))
            for ns in names
        )
        d = sum(len(x.list_objects("apps/v1", "Deployment", ns)) for ns in names)
        s = sum(len(x.list_objects("v1", "Service", ns)) for ns in names)
        return j, c, d, s  # fmt: skip

    settle_s = wait_until("every child", lambda: counts() >= (jobs, jobs, deployments, deployments))
    rss_end, peak = rss_mb()
    burst = counter.take()
    recon = {k: op.metrics.reconciliations.labels(k)._value.get() - recon_before[k] for k in KINDS}
    latencies = []
    for key, t in started.items():
        ns, name = key.split("/")
        latencies.append((watchers[ns].wait(f"{name}-train", timeout=60) - t) * 1000)
    for w in watchers.values():
        w.stop()
    owners: Counter[str] = Counter()
    for ns in names:
        for j in x.list_objects("batch/v1", "Job", ns, "app.kubernetes.io/component=trainer"):
            owners[f"{ns}/{j['metadata']['labels']['modelgarden.dev/fine-tune-job']}"] += 1
    j, c, d, s = counts()
    print(
        f"\n== {jobs} FineTuneJobs + {deployments} InferenceDeployments in {namespaces} namespace(s)"
    )
    print(
        f"created in {created_s:.1f} s; every child within {created_s + settle_s:.1f} s of the first create"
    )
    print(f"children: Jobs {j}, ConfigMaps {c}, Deployments {d}, Services {s};"
          f" FineTuneJobs without a Job {jobs - len(owners)}, with more than one {sum(1 for v in owners.values() if v > 1)}")  # fmt: skip
    print(
        f"create→Job: p50 {pct(latencies, 0.5):.0f} ms, p95 {pct(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms"
    )
    print(
        f"operator process RSS: {rss_start:.0f} MiB before, {rss_end:.0f} MiB after (peak {peak:.0f} MiB)"
    )
    total_recon = sum(recon.values())
    print(f"reconciliations { {k: int(v) for k, v in recon.items()} }; writes {sum(burst.values())}"
          f" = {sum(burst.values()) / max(total_recon, 1):.2f} per reconciliation")  # fmt: skip
    print("  by verb/resource: " + ", ".join(f"{m} {r}: {n}" for (m, r), n in burst.most_common()))
    recon_before = {k: op.metrics.reconciliations.labels(k)._value.get() for k in KINDS}
    counter.check_noops, counter.noops = True, 0
    time.sleep(steady_s)
    steady = counter.take()
    counter.check_noops = False
    for method, path, body in counter.recent if steady else []:
        print(f"  steady write: {method} {path} {json.dumps(body)[:600]}")
    recon = {k: op.metrics.reconciliations.labels(k)._value.get() - recon_before[k] for k in KINDS}
    print(f"steady state, {steady_s:.0f} s: {int(sum(recon.values()))} reconciliations, {sum(steady.values())} writes"
          f" ({counter.noops} status patches that changed nothing)"
          + (": " + ", ".join(f"{m} {r}: {n}" for (m, r), n in steady.most_common()) if steady else ""))  # fmt: skip
    if (j, c, d, s) != (jobs, jobs, deployments, deployments) or any(
        v > 1 for v in owners.values()
    ):
        raise SystemExit("FAILED: a child missed or made twice")


KINDS = ("FineTuneJob", "ModelVersion", "InferenceDeployment")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--namespaces", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    logging.basicConfig(level=logging.ERROR)
    for n in args.namespaces:  # a fresh control plane per layout (a /24 of Service IPs each)
        with (
            tempfile.TemporaryDirectory(prefix="mg-scale-") as tmp,
            envtest.running(Path(tmp)) as env,
        ):
            install_crds(env.api_client)
            x = Executor(env.api_client)
            settings = OperatorSettings(
                max_running_per_namespace=0,
                progress_poll_seconds=10,
                meter_poll_seconds=10,
                resync_seconds=10,
                metrics_port=0,
                health_port=0,
            )
            rss_before, _ = rss_mb()
            op = OperatorThread(load_client(env.kubeconfig), settings)
            counter = WriteCounter()
            executor = op.context.executor
            executor.call = counter.wrap(executor.call)  # type: ignore[method-assign]
            op.start()
            print(f"operator process RSS before start: {rss_before:.0f} MiB")
            try:
                run_layout(x, counter, op, args.jobs, args.deployments, n, f"ns{n}",
                           args.steady_seconds)  # fmt: skip
            finally:
                op.stop()


if __name__ == "__main__":
    main()
