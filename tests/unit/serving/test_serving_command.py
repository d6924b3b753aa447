"""The vLLM command line built from a ServingConfig (pure, no vLLM)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from model_garden.api.contracts import Identity, ServedArtifact, ServingConfig, ServingPorts
from model_garden.api.inferencedeployment import Engine, InferenceDeploymentSpec
from model_garden.serving.command import (
    VLLM_MODULE,
    ServingError,
    build_vllm_command,
    effective_dtype,
    redact,
    resolve_device,
)

AVX2 = frozenset({"avx2", "fma"})


def config(**engine: object) -> ServingConfig:
    adapters = engine.pop("adapters", [])
    dynamic = bool(engine.pop("dynamic_adapters", False))
    return ServingConfig(
        dynamic_adapters=dynamic,
        deployment=Identity(name="chat", namespace="ml"),
        spec=InferenceDeploymentSpec(model_version="chat-v3", engine=Engine(**engine)),
        model=ServedArtifact(name="chat", path="/models/chat/v3/merged"),
        adapters=adapters,
        ports=ServingPorts(api=8000, meter=9400),
    )


def value_of(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_cpu_command_runs_the_module_with_cpu_env_and_defaults() -> None:
    cmd = build_vllm_command(config(max_model_len=512), "/rt/python", "cpu", cpu_flags=AVX2)
    assert cmd.argv[:3] == ["/rt/python", "-m", VLLM_MODULE]
    assert value_of(cmd.argv, "--model") == "/models/chat/v3/merged"
    assert value_of(cmd.argv, "--served-model-name") == "chat"
    assert value_of(cmd.argv, "--port") == "8000"
    assert value_of(cmd.argv, "--max-model-len") == "512"
    assert value_of(cmd.argv, "--dtype") == "float32"  # AVX2 has no native bf16
    assert "--enable-lora" not in cmd.argv  # no adapter, none loadable at run time
    assert "--enforce-eager" not in cmd.argv  # compiling pays once LoRA is off
    assert "--gpu-memory-utilization" not in cmd.argv
    assert "--api-key" not in cmd.argv and "VLLM_API_KEY" not in cmd.env
    assert cmd.env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert cmd.env["HF_HUB_OFFLINE"] == "1"
    assert cmd.env["VLLM_NO_USAGE_STATS"] == "1" and cmd.env["DO_NOT_TRACK"] == "1"
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in cmd.env


def test_gpu_command_carries_engine_settings() -> None:
    cmd = build_vllm_command(
        config(
            dtype="bfloat16",
            gpu_memory_utilization="0.85",
            tensor_parallel_size=2,
            quantization="awq",
            extra_args=["--max-num-seqs", "64"],
        ),
        "python",
        "cuda",
        api_key="s3cret",
    )
    argv = cmd.argv
    assert value_of(argv, "--dtype") == "bfloat16"
    assert value_of(argv, "--gpu-memory-utilization") == "0.85"
    assert value_of(argv, "--tensor-parallel-size") == "2"
    assert value_of(argv, "--quantization") == "awq"
    assert argv[-2:] == ["--max-num-seqs", "64"]
    assert "--enforce-eager" not in argv
    assert "VLLM_CPU_KVCACHE_SPACE" not in cmd.env


def test_the_api_key_goes_by_environment_never_on_argv() -> None:
    cmd = build_vllm_command(config(), "python", "cpu", api_key="s3cret", cpu_flags=AVX2)
    assert "--api-key" not in cmd.argv
    assert not any("s3cret" in arg for arg in cmd.argv)  # /proc/<pid>/cmdline is world-readable
    assert cmd.env["VLLM_API_KEY"] == "s3cret"  # what vLLM reads without --api-key


@pytest.mark.parametrize("extra", [["--api-key", "k"], ["--api-key=k"]])
def test_an_api_key_in_extra_args_is_refused(extra: list[str]) -> None:
    with pytest.raises(ServingError, match=r"extraArgs.*apiKeySecret"):
        build_vllm_command(config(extra_args=extra), "python", "cpu", cpu_flags=AVX2)


def test_static_adapters_are_listed_at_start_with_runtime_loading_off() -> None:
    cmd = build_vllm_command(
        config(adapters=[ServedArtifact(name="sql", path="/a/sql")]), "p", "cpu", cpu_flags=AVX2
    )
    assert "--enable-lora" in cmd.argv and value_of(cmd.argv, "--lora-modules") == "sql=/a/sql"
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING" not in cmd.env
    assert "--enforce-eager" in cmd.argv


def test_dynamic_adapters_turn_runtime_loading_on_and_need_a_key() -> None:
    with pytest.raises(ServingError, match=r"dynamicAdapters: .*API key"):
        build_vllm_command(config(dynamic_adapters=True), "p", "cpu", cpu_flags=AVX2)
    cmd = build_vllm_command(config(dynamic_adapters=True), "p", "cpu", api_key="k", cpu_flags=AVX2)
    assert "--enable-lora" in cmd.argv and "--lora-modules" not in cmd.argv  # first one later
    assert cmd.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    with pytest.raises(ServingError, match=r"dynamicAdapters: needs LoRA"):
        build_vllm_command(
            config(dynamic_adapters=True, extra_args=["--no-enable-lora"]),
            "p",
            "cpu",
            api_key="k",
            cpu_flags=AVX2,
        )


def test_adapters_are_listed_with_their_limits() -> None:
    with_adapters = build_vllm_command(
        config(
            max_lora_rank=8,
            max_loras=2,
            adapters=[
                ServedArtifact(name="sql", path="/a/sql"),
                ServedArtifact(name="poems", path="/a/poems"),
            ],
        ),
        "python",
        "cpu",
        cpu_flags=AVX2,
    ).argv
    i = with_adapters.index("--lora-modules")
    assert with_adapters[i + 1 : i + 3] == ["sql=/a/sql", "poems=/a/poems"]
    assert value_of(with_adapters, "--max-lora-rank") == "8"
    assert value_of(with_adapters, "--max-loras") == "2"


@pytest.mark.parametrize(
    ("engine", "device", "message"),
    [
        ({"tensor_parallel_size": 2}, "cpu", "tensorParallelSize"),
        ({"adapters": [ServedArtifact(name="chat", path="/x")]}, "cpu", "served model"),
        (
            {
                "adapters": [
                    ServedArtifact(name="a", path="/x"),
                    ServedArtifact(name="a", path="/y"),
                ]
            },
            "cpu",
            "unique",
        ),
    ],
)
def test_bad_settings_name_the_field(engine: dict[str, object], device: str, message: str) -> None:
    with pytest.raises(ServingError, match=message):
        build_vllm_command(config(**engine), "python", device, cpu_flags=AVX2)


def test_gpu_memory_utilization_is_checked_again_on_the_command_line() -> None:
    cfg = config()
    cfg.spec.engine.gpu_memory_utilization = "1.5"  # the model refuses it; a config file may not
    with pytest.raises(ServingError, match="gpuMemoryUtilization"):
        build_vllm_command(cfg, "python", "cuda", cpu_flags=AVX2)


def test_extra_args_can_override_cpu_defaults() -> None:
    argv = build_vllm_command(
        config(
            extra_args=["--enforce-eager", "--max-num-seqs", "8"],
            adapters=[ServedArtifact(name="a", path="/a")],  # LoRA on: the CPU default applies
        ),
        "p",
        "cpu",
        cpu_flags=AVX2,
    ).argv
    assert argv.count("--enforce-eager") == 1


def test_redact_hides_a_key_that_came_in_some_other_way() -> None:
    assert redact(["vllm", "--api-key", "s3cret"]) == ["vllm", "--api-key", "***"]


def test_dtype_and_device_resolution() -> None:
    assert effective_dtype("auto", "cpu", AVX2) == "float32"
    assert effective_dtype("auto", "cpu", frozenset({"avx512_bf16"})) == "auto"
    assert effective_dtype("auto", "cuda", AVX2) == "auto"
    assert effective_dtype("bfloat16", "cpu", AVX2) == "bfloat16"
    assert resolve_device("auto", cuda_available=False) == "cpu"
    assert resolve_device("auto", cuda_available=True) == "cuda"
    assert resolve_device("cpu", cuda_available=True) == "cpu"
    with pytest.raises(ServingError, match="device"):
        resolve_device("tpu")


def test_lora_can_be_turned_off_for_speed() -> None:
    argv = build_vllm_command(
        config(extra_args=["--no-enable-lora"]), "p", "cpu", cpu_flags=AVX2
    ).argv
    assert "--enable-lora" not in argv and "--max-lora-rank" not in argv
    assert "--enforce-eager" not in argv  # compiling pays once LoRA is off
    assert argv[-1] == "--no-enable-lora"
    with pytest.raises(ServingError, match="LoRA off"):
        build_vllm_command(
            config(extra_args=["--no-enable-lora"], adapters=[ServedArtifact(name="a", path="/a")]),
            "p",
            "cpu",
            cpu_flags=AVX2,
        )


def _bench_flags() -> Any:
    """bench/serving_flags.py: the flag sets the serving bench measured (plain data)."""
    path = Path(__file__).resolve().parents[3] / "bench" / "serving_flags.py"
    spec = importlib.util.spec_from_file_location("serving_flags", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IDENTITY_FLAGS = ("--model", "--served-model-name", "--host", "--port")


def tuning_flags(argv: list[str]) -> dict[str, tuple[str, ...]]:
    """Flag -> its values, past the module and the identity flags the bench sets per server."""
    flags: dict[str, tuple[str, ...]] = {}
    rest = argv[argv.index(VLLM_MODULE) + 1 :]
    current = ""
    for arg in rest:
        if arg.startswith("--"):
            current = arg
            flags[current] = ()
        else:
            flags[current] += (arg,)
    for identity in IDENTITY_FLAGS:
        flags.pop(identity, None)
    return flags


BF16 = AVX2 | {"avx512f", "avx512_bf16"}


@pytest.mark.parametrize(("cpu", "dtype"), [(AVX2, "float32"), (BF16, "auto")])
def test_a_deployment_without_adapters_gets_the_best_measured_flags(
    cpu: frozenset[str], dtype: str
) -> None:
    bench = _bench_flags()
    plain = config(max_model_len=int(bench.MAX_MODEL_LEN))
    cmd = build_vllm_command(plain, "/rt/python", "cpu", cpu_flags=cpu)
    best = bench.rows(dtype)[bench.BEST]
    assert tuning_flags(cmd.argv) == tuning_flags([VLLM_MODULE, *best])
    assert bench.ENV.items() <= cmd.env.items()
    # ... and the best row is not vLLM's defaults: the comparison means something.
    assert best != bench.ablation()[bench.DEFAULTS]


@pytest.mark.parametrize(("cpu", "dtype"), [(AVX2, "float32"), (BF16, "auto")])
def test_a_deployment_with_adapters_gets_the_lora_row_of_the_bench(
    cpu: frozenset[str], dtype: str
) -> None:
    bench = _bench_flags()
    with_adapter = config(
        max_model_len=int(bench.MAX_MODEL_LEN),
        adapters=[ServedArtifact(name="support", path="/models/support")],
    )
    cmd = build_vllm_command(with_adapter, "/rt/python", "cpu", cpu_flags=cpu)
    flags = tuning_flags(cmd.argv)
    assert flags.pop("--lora-modules") == ("support=/models/support",)
    assert flags == tuning_flags([VLLM_MODULE, *bench.rows(dtype)[bench.WITH_ADAPTERS]])
