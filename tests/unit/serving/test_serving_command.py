"""The vLLM command line built from a ServingConfig (pure, no vLLM)."""

from __future__ import annotations

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
    return ServingConfig(
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
    assert "--enforce-eager" in cmd.argv
    assert "--gpu-memory-utilization" not in cmd.argv
    assert "--api-key" not in cmd.argv
    assert cmd.env["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert cmd.env["HF_HUB_OFFLINE"] == "1"
    assert cmd.env["VLLM_NO_USAGE_STATS"] == "1" and cmd.env["DO_NOT_TRACK"] == "1"
    assert cmd.env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"


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
    assert value_of(argv, "--api-key") == "s3cret"
    assert argv[-2:] == ["--max-num-seqs", "64"]
    assert "--enforce-eager" not in argv
    assert "VLLM_CPU_KVCACHE_SPACE" not in cmd.env
    assert "s3cret" not in " ".join(redact(argv))
    assert "s3cret" not in str(cmd.env)


def test_lora_is_always_enabled_and_adapters_listed() -> None:
    plain = build_vllm_command(config(), "python", "cpu", cpu_flags=AVX2).argv
    assert "--enable-lora" in plain and "--lora-modules" not in plain
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
        ({"gpu_memory_utilization": "1.5"}, "cuda", "gpuMemoryUtilization"),
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


def test_extra_args_can_override_cpu_defaults() -> None:
    argv = build_vllm_command(
        config(extra_args=["--enforce-eager", "--max-num-seqs", "8"]), "p", "cpu", cpu_flags=AVX2
    ).argv
    assert argv.count("--enforce-eager") == 1


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
