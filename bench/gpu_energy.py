"""GPU energy of a LoRA training run, measured by NVML, against what our CPU path would estimate.

    python bench/gpu_energy.py [--steps 50] [--batch 8] [--seq 512]

For a device machine (issue 13, "Measure"): one Transformers + PEFT LoRA run of a ≈0.5B
Qwen2-shaped model built from config (no download), bf16, random tokens. The GPU's energy is
read from its NVML counter through zeus (``model_garden.carbon.measure_gpu``, as the trainer
and the meter read it), or straight from NVML when zeus is not installed there. Printed, as
one JSON line: trained tokens, seconds, measured GPU joules and J per trained token, and the
estimate our CPU path (no NVML: CodeCarbon's per-thread CPU power × CPU-seconds, plus RAM) would
have given for the same run, with the ratio measured / estimated. Without a GPU it says so and
exits 2: nothing here is estimated in its place.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "operator"))


def nvml_joules() -> tuple[object, str]:
    """A callable returning the GPUs' cumulative joules, and its label (zeus, else NVML)."""
    from model_garden.carbon.measure_gpu import open_gpu_meter

    meter, why = open_gpu_meter()
    if meter is not None:
        return meter.joules, meter.source
    import pynvml

    pynvml.nvmlInit()
    handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    start = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles]

    def joules() -> float:
        now = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles]
        return sum(b - a for a, b in zip(start, now, strict=True)) / 1000.0

    return joules, f"nvml (pynvml; zeus: {why})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=512)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA GPU here: nothing measured"}))
        return 2
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Qwen2Config

    from model_garden.serving.energy import WATTS_PER_BUSY_THREAD, ram_watts

    config = Qwen2Config(
        hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, vocab_size=151936, max_position_embeddings=4096,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16).cuda()
    params = sum(p.numel() for p in model.parameters())
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    model = get_peft_model(model, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = torch.randint(0, config.vocab_size, (args.batch, args.seq), device="cuda")
    joules, source = nvml_joules()
    torch.cuda.synchronize()
    cpu0, wall0, gpu0 = time.process_time(), time.monotonic(), joules()  # type: ignore[operator]
    for _ in range(args.steps):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    gpu_j = joules() - gpu0  # type: ignore[operator]
    cpu_s, wall_s = time.process_time() - cpu0, time.monotonic() - wall0
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    estimate_j = WATTS_PER_BUSY_THREAD * cpu_s + ram_watts(rss_gb) * wall_s
    tokens = args.steps * args.batch * args.seq
    print(json.dumps({
        "model_params": params, "tokens": tokens, "seconds": round(wall_s, 2),
        "gpu": torch.cuda.get_device_name(0), "gpu_source": source,
        "gpu_joules": round(gpu_j, 1), "measured_j_per_token": gpu_j / tokens,
        "cpu_path_estimate_joules": round(estimate_j, 1),
        "cpu_path_estimate_j_per_token": estimate_j / tokens,
        "measured_over_estimate": gpu_j / estimate_j if estimate_j else None,
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
