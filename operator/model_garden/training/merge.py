"""Merge a LoRA/QLoRA adapter into its base model and save it as safetensors (runtime only).

The base is reloaded in full precision (never 4-bit), so a QLoRA adapter merges into weights
vLLM and transformers load as a plain model. It is reloaded exactly as training loaded it: the
same hub revision and token (see :func:`base_load_kwargs`), so the merged weights are the
trained base plus the adapter, not whatever the hub's default branch holds today.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from model_garden.api.contracts import TrainingConfig

from .backends import hub_kwargs


def base_load_kwargs(config: TrainingConfig, base_model: str) -> dict[str, Any]:
    """``from_pretrained`` kwargs for reloading ``base_model``: its revision and token when it
    is the hub id training loaded, nothing for a local folder."""
    if Path(base_model).exists():
        return {}
    return hub_kwargs(config.runtime)


def merge_adapter(
    base_model: str,
    adapter_dir: Path,
    out_dir: Path,
    device: str = "cpu",
    load_kwargs: dict[str, Any] | None = None,
) -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype, **(load_kwargs or {}))
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
