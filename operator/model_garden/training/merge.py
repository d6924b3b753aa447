"""Merge a LoRA/QLoRA adapter into its base model and save it as safetensors (runtime only).

The base is reloaded in full precision (never 4-bit), so a QLoRA adapter merges into weights
vLLM and transformers load as a plain model.
"""

from __future__ import annotations

from pathlib import Path


def merge_adapter(base_model: str, adapter_dir: Path, out_dir: Path, device: str = "cpu") -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    base = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
