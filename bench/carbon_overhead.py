"""The carbon meters' own cost: CPU time of the serving meter and of the trainer's tracking,
against the CPU time of the work they measure (issue 13, "Measure": target <= 1%).

    eval "$(bash scripts/build-cpu-runtime.sh)"   # torch, transformers, peft, codecarbon
    $MODEL_GARDEN_RUNTIME_PYTHON bench/carbon_overhead.py [--steps 300] [--rounds 3]

One invocation, two parts:

* **meter**: ``--ticks`` ticks of the real serving meter (``serving.meter.Meter.tick``: the
  pod's energy read by the default source, an HTTP scrape of a vLLM ``/metrics`` page, the
  accounting, the state file and its history written), against a local server answering the
  page recorded from vLLM 0.32 with two LoRA adapters (``--page``), or a live vLLM
  (``--vllm-url``). The meter ticks once a second, so its CPU time per tick over 1 s is the
  share of one core it takes; vLLM serving on CPU keeps at least one core busy, so that share
  bounds its overhead against the serving work from above.
* **trainer**: the same CPU training run of the tiny Llama (built from config, LoRA, our loop
  ``training.loop.train``) with carbon tracking off and on, interleaved (off, on, on, off, ...)
  and repeated ``--rounds`` times in one process. *On* is what a run adds for carbon:
  ``carbon.tracker.TrainingCarbonTracker`` started before and stopped after the loop
  (CodeCarbon's sampling thread in between), and after every step what ``training.fit``
  does: ``ProgressTracker.step_done`` (history line included), ``report()`` and
  ``set_carbon``. The process's CPU time (all threads, CodeCarbon's included) of each run is
  compared; the tracking calls on the training thread are also timed directly (``thread_time``),
  which is not drowned by the run-to-run noise of the training itself. CodeCarbon's start and
  stop are a fixed cost per run (hardware probing, a last sample), reported apart with the
  run length above which they stay under 1%; the steady part (its sampling thread and the
  per-step calls) is a rate, the figure that holds for a run of any length.

Prints one JSON document. torch runs on one thread (``--threads``) so that its CPU time is the
work and not OpenMP's spin-waits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))

RECORDED_PAGE = Path(__file__).with_name("vllm_metrics_0.32_lora.txt")


# -- meter ---------------------------------------------------------------------------------------


def serve_page(text: str) -> tuple[ThreadingHTTPServer, str]:
    body = text.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def bench_meter(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from model_garden.serving.accounting import Accountant
    from model_garden.serving.energy import open_energy_source
    from model_garden.serving.meter import Meter

    server = None
    url = args.vllm_url
    page_bytes = None
    if url is None:
        text = Path(args.page).read_text(encoding="utf-8")
        page_bytes = len(text.encode())
        server, url = serve_page(text)
    accountant = Accountant.resume(
        work / "meter.json", intensity_g_per_kwh=56.0, country="FRA", history_every_s=60.0
    )
    meter = Meter(url, open_energy_source("auto", pid=os.getpid()), accountant, "bench", "bench")
    meter.tick()  # connections and first reading out of the way
    # The meter's tick runs on its own thread in the pod; time it on this one, alone.
    start = time.thread_time()
    wall = time.perf_counter()
    for _ in range(args.ticks):
        meter.tick()
    cpu = time.thread_time() - start
    wall = time.perf_counter() - wall
    if server is not None:
        server.shutdown()
    per_tick = cpu / args.ticks
    return {
        "ticks": args.ticks,
        "page": str(args.page) if args.vllm_url is None else args.vllm_url,
        "page_bytes": page_bytes,
        "cpu_ms_per_tick": per_tick * 1000,
        "wall_ms_per_tick": wall / args.ticks * 1000,
        "share_of_one_core_at_1s_interval": per_tick / 1.0,
    }


# -- trainer -------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, work: Path) -> tuple[list[list[int]], list[list[int]]]:
    """The tiny Llama (from config) and tokenized completion-only rows, built once."""
    from transformers import AutoTokenizer

    from model_garden.demo.tiny_model import build_tiny_model
    from model_garden.training.datasets import Example, Message
    from model_garden.training.tokenize import resolve_template, tokenize_examples

    build_tiny_model(work / "model", hidden_size=args.hidden, layers=args.layers, heads=4)
    tok = AutoTokenizer.from_pretrained(work / "model")
    rows = [
        Example(
            i + 1,
            messages=(
                Message("user", f"Describe pet number {i}: a {'red ' * (i % 7 + 1)}cat."),
                Message("assistant", f"The cat is {'very ' * (i % 11 + 1)}red."),
            ),
        )
        for i in range(args.batch * args.steps)
    ]
    template, _ = resolve_template(tok, None)
    data = tokenize_examples(rows, tok, 256, template)
    return data.input_ids, data.labels


def one_run(
    args: argparse.Namespace, work: Path, data: tuple[list[list[int]], list[list[int]]], on: bool
) -> dict[str, float]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, get_scheduler

    from model_garden.carbon.tracker import TrainingCarbonTracker
    from model_garden.training.loop import LoopState, train
    from model_garden.training.progress import ProgressTracker

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(work / "model", dtype="float32")
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    scheduler = get_scheduler("constant", optimizer)
    ids, labels = data
    progress = ProgressTracker(args.steps)
    history = work / f"history-{time.monotonic_ns()}.jsonl"
    progress.history = history
    tracked = [0.0]  # thread CPU of the per-step tracking calls

    tracker: TrainingCarbonTracker | None = None

    def on_step(state: Any, loss: float, lr: float, tokens: int, epoch: float) -> None:
        if tracker is None:
            return
        t0 = time.thread_time()
        progress.step_done(state.step, epoch, loss, lr, tokens)
        rep = tracker.report()
        progress.set_carbon(rep.energy_kwh, rep.emissions_kg, str(rep.method))
        tracked[0] += time.thread_time() - t0

    cpu0, wall0, thread0 = time.process_time(), time.perf_counter(), time.thread_time()
    start_stop = 0.0  # CPU of CodeCarbon's start and stop: once per run, whatever its length
    if on:
        tracker = TrainingCarbonTracker(
            "FRA", measure_power_secs=args.measure_power_secs, gpu=lambda: (None, "bench: CPU only")
        )
        t0 = time.process_time()
        tracker.start()
        start_stop += time.process_time() - t0
    progress.start_training()
    train(
        model,
        ids,
        labels,
        batch_size=args.batch,
        accumulation=1,
        seed=0,
        group_by_length=True,
        total_steps=args.steps,
        steps_per_epoch=len(ids) // args.batch,
        optimizer=optimizer,
        scheduler=scheduler,
        pad_id=int(model.config.pad_token_id),
        device="cpu",
        state=LoopState(),
        on_step=on_step,
        should_stop=lambda: None,
    )
    energy_kwh = None
    if tracker is not None:
        t0 = time.process_time()
        energy_kwh = tracker.stop().energy_kwh
        start_stop += time.process_time() - t0
    history.unlink(missing_ok=True)
    return {
        "cpu_s": time.process_time() - cpu0,
        "thread_cpu_s": time.thread_time() - thread0,
        "wall_s": time.perf_counter() - wall0,
        "tracking_calls_cpu_s": tracked[0],
        "start_stop_cpu_s": start_stop,
        **({"energy_kwh": energy_kwh} if energy_kwh is not None else {}),
    }


def bench_trainer(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    data = prepare(args, work)
    one_run(args, work, data, on=False)  # warm-up: allocator, kernels, imports
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for r in range(args.rounds):
        order = ("off", "on") if r % 2 == 0 else ("on", "off")
        for mode in order:
            runs[mode].append(one_run(args, work, data, on=mode == "on"))
    off = [x["cpu_s"] for x in runs["off"]]
    on = [x["cpu_s"] for x in runs["on"]]
    work_cpu = statistics.median(off)
    calls = statistics.median(x["tracking_calls_cpu_s"] for x in runs["on"])
    start_stop = statistics.median(x["start_stop_cpu_s"] for x in runs["on"])
    diff = statistics.median(on) - work_cpu
    steady = statistics.median(x["cpu_s"] - x["start_stop_cpu_s"] for x in runs["on"]) - work_cpu
    # CPU of the threads other than the training one (torch runs on it: --threads 1): with
    # tracking on, CodeCarbon's sampling thread; the training thread's own increase is the rest
    others = {m: statistics.median(x["cpu_s"] - x["thread_cpu_s"] for x in runs[m]) for m in runs}
    return {
        "steps": args.steps,
        "rounds": args.rounds,
        "threads": args.threads,
        "model": f"tiny Llama hidden {args.hidden}, {args.layers} layers, LoRA r=8 all-linear",
        "cpu_s_off": off,
        "cpu_s_on": on,
        "wall_s_off": [x["wall_s"] for x in runs["off"]],
        "wall_s_on": [x["wall_s"] for x in runs["on"]],
        "work_cpu_s_median": work_cpu,
        "tracking_cpu_s_median_difference": diff,
        "tracking_ratio_by_difference": diff / work_cpu,
        "noise_off_cpu_s_stdev": statistics.pstdev(off),
        "tracking_calls_cpu_s_median": calls,
        "tracking_calls_ratio": calls / work_cpu,
        "measure_power_secs": args.measure_power_secs,
        "other_threads_cpu_s_off": others["off"],
        "other_threads_cpu_s_on": others["on"],
        "start_stop_cpu_s_median": start_stop,
        "steady_tracking_cpu_s": steady,
        "steady_tracking_ratio": steady / work_cpu,
        "run_cpu_s_for_start_stop_under_1pct": start_stop / 0.01,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=300, help="Meter ticks timed.")
    parser.add_argument("--page", default=str(RECORDED_PAGE), help="A recorded /metrics page.")
    parser.add_argument("--vllm-url", default=None, help="Scrape a live vLLM instead.")
    parser.add_argument("--steps", type=int, default=300, help="Optimizer steps per run.")
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs, interleaved.")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--measure-power-secs",
        type=float,
        default=1.0,
        help="CodeCarbon's sampling interval (the trainer's default: 1 s).",
    )
    parser.add_argument("--skip", choices=("meter", "trainer"), default=None)
    args = parser.parse_args()
    out: dict[str, Any] = {"target_ratio": 0.01}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.skip != "meter":
            out["meter"] = bench_meter(args, work)
        if args.skip != "trainer":
            out["trainer"] = bench_trainer(args, work)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
