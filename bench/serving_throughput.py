"""Serving throughput: vLLM (CPU) through our launcher vs vLLM defaults vs naive transformers.

Run in the ML runtime, from the repository root:

    eval "$(bash scripts/build-cpu-runtime.sh)"
    PYTHONPATH=operator "$MODEL_GARDEN_RUNTIME_PYTHON" bench/serving_throughput.py

For each model (the tiny test model, and a Llama built from config with hidden 256 and 4 layers,
large enough for compute to matter) it sends the same prompts, each generating exactly
``--max-tokens`` tokens (``ignore_eos`` / ``min_new_tokens``), and prints requests/s and
tokens/s:

- ``naive``: transformers ``generate``, one request at a time (a server without batching: at any
  concurrency it serves requests one after another, so its throughput is measured once);
- ``launcher``: ``python -m model_garden.serving`` (our flags; the meter runs beside it) at
  concurrency 1, 4 and 16, with no adapter and dynamic adapters off, so LoRA is off;
- ``defaults``: ``python -m vllm.entrypoints.openai.api_server --model M`` with no flags (only
  ``VLLM_CPU_KVCACHE_SPACE=1`` so it can start on a shared machine), for the larger model (one
  more vLLM start per model would double the run time).

It also prints the meter's CPU time as a share of vLLM's CPU time over the launcher's load phase.
``--ablation`` instead runs the larger model under four vLLM flag sets, to see which of the
launcher's CPU choices (LoRA on when adapters are served, float32, eager) costs what.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

from serving_flags import BEST, ENV, MAX_MODEL_LEN, ablation, rows  # noqa: E402

from model_garden.api.contracts import (  # noqa: E402
    Identity,
    ServedArtifact,
    ServingConfig,
    ServingPorts,
    write_document,
)
from model_garden.api.inferencedeployment import Engine, InferenceDeploymentSpec  # noqa: E402
from model_garden.runtime import runtime_env  # noqa: E402
from model_garden.serving.energy import CLOCK_TICKS  # noqa: E402

PROMPTS = [
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "What is the capital of France?",
    "Hello, how are you today? I am fine, thank you.",
    "Write a short poem about the sea and the sky.",
    "Explain why the sky is blue in one sentence.",
    "List three colours.",
    "Translate 'good morning' into French.",
    "Summarise the plot of a story about a lost dog finding its way home.",
]


@dataclass
class Result:
    label: str
    concurrency: int
    requests: int
    seconds: float
    tokens: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def tps(self) -> float:
        return self.tokens / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_model(out: Path, hidden: int, layers: int) -> Path:
    if not (out / "config.json").exists():
        from model_garden.demo.tiny_model import build_tiny_model

        build_tiny_model(out, hidden_size=hidden, layers=layers, heads=max(2, hidden // 64))
    return out


# -- naive baseline ---------------------------------------------------------------------------


def naive(model_dir: Path, n_requests: int, max_tokens: int) -> Result:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    generated = 0

    def one(prompt: str) -> int:
        ids = tok(prompt, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(
                **ids,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
        return int(out.shape[1] - ids["input_ids"].shape[1])

    one(PROMPTS[0])  # warm-up
    start = time.perf_counter()
    for i in range(n_requests):
        generated += one(PROMPTS[i % len(PROMPTS)])
    return Result("naive", 1, n_requests, time.perf_counter() - start, generated)


# -- vLLM servers -----------------------------------------------------------------------------


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise TimeoutError(f"not healthy after {timeout:.0f}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # engine processes left behind
    except ProcessLookupError:
        pass


def load(url: str, model: str, concurrency: int, n_requests: int, max_tokens: int) -> Result:
    with httpx.Client(base_url=url, timeout=600) as client:

        def one(i: int) -> int:
            r = client.post(
                "/v1/completions",
                json={
                    "model": model,
                    "prompt": PROMPTS[i % len(PROMPTS)],
                    "max_tokens": max_tokens,
                    "ignore_eos": True,
                    "temperature": 0,
                },
            )
            r.raise_for_status()
            return int(r.json()["usage"]["completion_tokens"])

        one(0)  # warm-up
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            tokens = sum(pool.map(one, range(n_requests)))
        return Result("", concurrency, n_requests, time.perf_counter() - start, tokens)


def tree_cpu(root: int) -> dict[int, tuple[str, float]]:
    """pid -> (cmdline, CPU-seconds incl. reaped children) for ``root`` and its descendants."""
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        stats[int(entry.name)] = (cmd, sum(int(f) for f in fields[11:15]) / CLOCK_TICKS)
    out, stack = {}, [root]
    while stack:
        pid = stack.pop()
        if pid in stats:
            out[pid] = stats[pid]
        stack.extend(children.get(pid, []))
    return out


def split_cpu(launcher_pid: int) -> tuple[float, float]:
    """(meter CPU-seconds, vLLM CPU-seconds) under the launcher."""
    meter = vllm = 0.0
    for pid, (cmd, cpu) in tree_cpu(launcher_pid).items():
        if "model_garden.serving.meter" in cmd:
            meter += cpu
        elif pid != launcher_pid:
            vllm += cpu
    return meter, vllm


def run_server(
    label: str,
    argv: list[str],
    env: dict[str, str],
    url: str,
    model: str,
    levels: list[int],
    max_tokens: int,
    start_timeout: float,
    log: Path,
    requests: Callable[[int], int] = lambda c: max(8, 2 * c),
) -> tuple[list[Result], float, tuple[float, float] | None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        started = wait_healthy(url, proc, start_timeout)
        print(f"  {label}: healthy after {started:.0f}s", flush=True)
        cpu_before = split_cpu(proc.pid) if label == "launcher" else None
        results = []
        for c in levels:
            r = load(url, model, c, requests(c), max_tokens)
            r.label = label
            results.append(r)
            print(f"  {label} c={c}: {r.rps:.2f} req/s {r.tps:.1f} tok/s", flush=True)
        share = None
        if cpu_before is not None:
            after = split_cpu(proc.pid)
            share = (after[0] - cpu_before[0], after[1] - cpu_before[1])
        return results, started, share
    finally:
        stop(proc)


def bench_model(
    name: str, model_dir: Path, args: argparse.Namespace, with_defaults: bool, work: Path
) -> dict[str, object]:
    print(f"\n== {name} ({model_dir})", flush=True)
    levels = [1, 4, 16]
    report: dict[str, object] = {"model": name}
    base = naive(model_dir, args.naive_requests, args.max_tokens)
    print(f"  naive: {base.rps:.2f} req/s {base.tps:.1f} tok/s", flush=True)
    report["naive"] = {"rps": base.rps, "tps": base.tps}

    config = bench_config(name, model_dir, [])
    port = config.ports.api
    env = runtime_env()
    env.pop("MODEL_GARDEN_API_KEY", None)
    launcher, start_s, cpu = run_server(
        "launcher",
        launcher_argv(config, work, name),
        env,
        f"http://127.0.0.1:{port}",
        name,
        levels,
        args.max_tokens,
        args.start_timeout,
        work / f"{name}-launcher.log",
    )
    report["launcher"] = {str(r.concurrency): {"rps": r.rps, "tps": r.tps} for r in launcher}
    report["launcherStartSeconds"] = start_s
    if cpu is not None:
        report["meterCpuSeconds"], report["vllmCpuSeconds"] = cpu
        report["meterCpuShare"] = cpu[0] / cpu[1] if cpu[1] else None
    if with_defaults:
        port = free_port()
        # Offline, no telemetry, and the one setting without which vLLM CPU does not start on a
        # shared machine: by default it reserves 92% of the NUMA node's memory (its
        # gpu_memory_utilization applies to CPU memory) and refuses to start when that is not free.
        # Every flag stays at vLLM's default.
        defaults_env = runtime_env(extra=ENV)
        try:
            defaults, start_s, _ = run_server(
                "defaults",
                vllm_argv(model_dir, name, port, []),
                defaults_env,
                f"http://127.0.0.1:{port}",
                name,
                levels,
                args.max_tokens,
                args.start_timeout,
                work / f"{name}-defaults.log",
            )
            report["defaults"] = {
                str(r.concurrency): {"rps": r.rps, "tps": r.tps} for r in defaults
            }
            report["defaultsStartSeconds"] = start_s
        except (RuntimeError, TimeoutError) as exc:
            report["defaults"] = f"did not serve: {exc}"
            print(f"  defaults: {exc}", flush=True)
    return report


def run_ablation(model_dir: Path, args: argparse.Namespace, work: Path) -> None:
    """Which of the launcher's CPU choices costs what: vLLM started directly with each flag set,
    ``max(16, 4c)`` requests per level (more than the main run: the differences are small)."""
    print(f"\n== ablation on {model_dir.name}", flush=True)
    env = runtime_env(extra=ENV)
    rows = []
    for i, (label, flags) in enumerate(ablation().items()):
        port = free_port()
        argv = vllm_argv(model_dir, "m", port, flags)
        try:
            results, start_s, _ = run_server(
                label,
                argv,
                env,
                f"http://127.0.0.1:{port}",
                "m",
                [1, 4, 16],
                args.max_tokens,
                args.start_timeout,
                work / f"ablation-{i}.log",
                requests=lambda c: max(16, 4 * c),
            )
            rows.append((label, start_s, [r.tps for r in results]))
        except (RuntimeError, TimeoutError) as exc:
            print(f"  {label}: {exc}", flush=True)
    print("\n== ablation summary (tokens/s at c=1, 4, 16; start seconds)")
    for label, start_s, tps in rows:
        print(f"{label:>38}: " + "  ".join(f"{t:7.1f}" for t in tps) + f"   start {start_s:.0f}s")


def vllm_argv(model_dir: Path, name: str, port: int, flags: list[str]) -> list[str]:
    """vLLM's OpenAI server started directly, with ``flags`` after the identity arguments."""
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *flags,
    ]


def launcher_argv(config: ServingConfig, work: Path, label: str) -> list[str]:
    config_path = work / f"{label}-config.json"
    write_document(config, config_path)
    return [
        sys.executable,
        "-m",
        "model_garden.serving",
        "--config",
        str(config_path),
        "--state-file",
        str(work / f"{label}-meter.json"),
    ]


def bench_config(name: str, model_dir: Path, adapters: list[ServedArtifact]) -> ServingConfig:
    return ServingConfig(
        deployment=Identity(name=f"bench-{name}"),
        spec=InferenceDeploymentSpec(
            model_version="bench", engine=Engine(max_model_len=int(MAX_MODEL_LEN))
        ),
        model=ServedArtifact(name=name, path=str(model_dir)),
        adapters=adapters,
        ports=ServingPorts(api=free_port(), meter=free_port()),
        host="127.0.0.1",
        device="cpu",
    )


def make_adapter(base: Path, out: Path) -> Path:
    """A random, non-zero rank-8 LoRA adapter on q/v (what the trainer's default targets)."""
    if (out / "adapter_config.json").exists():
        return out
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base)
    lora = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, lora).save_pretrained(out)
    return out


@dataclass
class Series:
    """One thing measured in the interleaved run: a server and the model name asked of it."""

    label: str
    url: str
    model: str
    tps: dict[int, list[float]]


def versus_best(model_dir: Path, args: argparse.Namespace, work: Path) -> None:
    """The launcher against vLLM's best flags, interleaved so that load on the machine hits all.

    Four servers run at once: vLLM started directly with the :data:`BEST` row's flags in float32
    and in vLLM's own dtype (bfloat16; which wins depends on the CPU, so vLLM's best at each
    concurrency is the faster of the two), the launcher for a deployment without adapters, and
    the launcher for one with an adapter. Each round measures every series at each concurrency,
    in an order that rotates between rounds; the ratios are of medians over the rounds.
    """
    print(f"\n== launcher vs vLLM's best flags on {model_dir.name}", flush=True)
    name = "m"
    adapter = make_adapter(model_dir, work / "adapter-r8")
    plain = bench_config(name, model_dir, [])
    with_adapter = bench_config(name, model_dir, [ServedArtifact(name="ad", path=str(adapter))])
    fp32_port, auto_port = free_port(), free_port()
    env = runtime_env(extra=ENV)
    env.pop("MODEL_GARDEN_API_KEY", None)
    servers = {
        "vLLM best, fp32": (
            vllm_argv(model_dir, name, fp32_port, rows("float32")[BEST]),
            fp32_port,
        ),
        "vLLM best, bf16": (vllm_argv(model_dir, name, auto_port, rows("auto")[BEST]), auto_port),
        "launcher": (launcher_argv(plain, work, "launcher"), plain.ports.api),
        "launcher+adapter": (launcher_argv(with_adapter, work, "adapter"), with_adapter.ports.api),
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for label, (argv, _port) in servers.items():
            with (work / f"versus-{label.replace(' ', '_')}.log").open("wb") as out:
                procs[label] = subprocess.Popen(
                    argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
        for label, (_argv, port) in servers.items():
            took = wait_healthy(f"http://127.0.0.1:{port}", procs[label], args.start_timeout)
            print(f"  {label}: healthy after {took:.0f}s (all start together)", flush=True)
        url = {label: f"http://127.0.0.1:{port}" for label, (_a, port) in servers.items()}
        series = [
            Series("vLLM best, fp32", url["vLLM best, fp32"], name, {}),
            Series("vLLM best, bf16", url["vLLM best, bf16"], name, {}),
            Series("launcher", url["launcher"], name, {}),
            Series("adapter server, base", url["launcher+adapter"], name, {}),
            Series("adapter server, adapter", url["launcher+adapter"], "ad", {}),
        ]
        levels = [1, 4, 16]
        for round_no in range(args.rounds):
            # Every series follows a different one from round to round (rotated, and reversed
            # every other round), and each starts after a pause: vLLM CPU workers busy-poll for
            # a second after their last step, which would tax whoever runs next.
            shift = round_no % len(series)
            order = series[shift:] + series[:shift]
            if round_no % 2:
                order.reverse()
            for c in levels:
                for one in order:
                    time.sleep(args.pause)
                    r = load(one.url, one.model, c, max(16, 4 * c), args.max_tokens)
                    one.tps.setdefault(c, []).append(r.tps)
            print(
                f"  round {round_no + 1}/{args.rounds}: "
                + "; ".join(
                    f"{s.label} " + "/".join(f"{s.tps[c][-1]:.0f}" for c in levels) for s in series
                ),
                flush=True,
            )
    finally:
        for proc in procs.values():
            stop(proc)
    # vLLM's best at each concurrency: the dtype row with the higher median. Ratios are per
    # round, against that row in the same round (the two ran seconds apart), then the median:
    # load that drifts between rounds cancels.
    best = {c: max(series[:2], key=lambda one: median(one.tps[c])) for c in levels}

    def ratio(one: Series, c: int) -> float:
        return median(a / b for a, b in zip(one.tps[c], best[c].tps[c], strict=True))

    print(
        f"\n== tokens/s, median of {args.rounds} interleaved rounds [min-max], and the median of "
        "the per-round ratios to vLLM's best row at that concurrency"
    )
    print(f"{'':>26}" + "".join(f"{'c=' + str(c):>24}" for c in levels))
    for one in series:
        cells = []
        for c in levels:
            low, high = min(one.tps[c]), max(one.tps[c])
            cells.append(f"{median(one.tps[c]):7.1f} x{ratio(one, c):4.2f} [{low:.0f}-{high:.0f}]")
        print(f"{one.label:>26}" + "".join(f"{cell:>24}" for cell in cells))
    launcher, adapter = series[2], series[4]
    print("vLLM's best row: " + "  ".join(f"c={c} {best[c].label}" for c in levels))
    print(
        "launcher / vLLM's best (target >= 0.9): "
        + "  ".join(f"c={c} x{ratio(launcher, c):.2f}" for c in levels)
    )
    lora_cost = {
        c: median(a / b for a, b in zip(adapter.tps[c], launcher.tps[c], strict=True))
        for c in levels
    }
    print(
        "cost of LoRA (adapter requests / launcher without adapters, per round): "
        + "  ".join(f"c={c} x{lora_cost[c]:.2f}" for c in levels)
    )


def print_ratios(reports: list[dict[str, object]]) -> None:
    print("\n== Summary (tokens/s; ratios are vLLM via launcher / naive, launcher / defaults)")
    for rep in reports:
        naive_tps = rep["naive"]["tps"]  # type: ignore[index]
        launcher = rep["launcher"]
        defaults = rep.get("defaults")
        for c in ("1", "4", "16"):
            l_tps = launcher[c]["tps"]  # type: ignore[index]
            line = f"{rep['model']:>12} c={c:>2}: launcher {l_tps:8.1f}  naive {naive_tps:8.1f}  x{l_tps / naive_tps:5.2f}"
            if isinstance(defaults, dict):
                d_tps = defaults[c]["tps"]
                line += f"  defaults {d_tps:8.1f}  launcher/defaults x{l_tps / d_tps:5.2f}"
            print(line)
        share = rep.get("meterCpuShare")
        if isinstance(share, float):
            print(
                f"{rep['model']:>12} meter CPU {rep['meterCpuSeconds']:.2f}s / vLLM CPU "
                f"{rep['vllmCpuSeconds']:.1f}s = {100 * share:.2f}% (target <= 2%)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--work", type=Path, default=None, help="Models and logs (default: a temp dir)."
    )
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--naive-requests", type=int, default=8)
    parser.add_argument("--start-timeout", type=float, default=420)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument(
        "--rounds", type=int, default=5, help="Interleaved rounds for --versus-best."
    )
    parser.add_argument(
        "--pause", type=float, default=3.0, help="Seconds of quiet before each --versus-best load."
    )
    parser.add_argument(
        "--versus-best",
        action="store_true",
        help="Instead: the launcher (with and without an adapter) against vLLM's best flags, "
        "interleaved, with the ratios.",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="Instead: the larger model under four vLLM flag sets (launcher's, without LoRA, ...).",
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="mg-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    llama = build_model(work / "llama-256x4", 256, 4)
    if args.versus_best:
        versus_best(llama, args, work)
        print(f"\nwall time {time.monotonic() - began:.0f}s; logs in {work}")
        return
    if args.ablation:
        run_ablation(llama, args, work)
        print(f"\nwall time {time.monotonic() - began:.0f}s; logs in {work}")
        return
    tiny = build_model(work / "tiny", 64, 2)
    reports = [
        bench_model("tiny", tiny, args, with_defaults=False, work=work),
        bench_model("llama-256x4", llama, args, with_defaults=True, work=work),
    ]
    print_ratios(reports)
    print(f"\nwall time {time.monotonic() - began:.0f}s; logs in {work}")
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
