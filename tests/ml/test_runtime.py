"""The CPU ML runtime that scripts/build-cpu-runtime.sh builds carries what training and serving need."""

from __future__ import annotations

import json

import pytest

from harness.runtime import run_runtime

pytestmark = pytest.mark.ml

PROBE = """
import json, importlib
mods = ["torch", "transformers", "peft", "trl", "datasets", "codecarbon", "bitsandbytes", "vllm"]
out = {m: getattr(importlib.import_module(m), "__version__", "?") for m in mods}
import torch
out["cuda"] = torch.cuda.is_available()
out["torch_cpu_build"] = "+cpu" in torch.__version__
import model_garden
out["model_garden_from"] = model_garden.__file__
print(json.dumps(out))
"""


def test_runtime_imports_the_ml_stack_and_this_checkout(ml_runtime: str) -> None:
    out = json.loads(run_runtime(["-c", PROBE]).stdout.strip().splitlines()[-1])
    assert out["torch_cpu_build"] and out["cuda"] is False
    for module in ("transformers", "peft", "trl", "codecarbon", "vllm"):
        assert out[module] not in ("", "?"), module
    assert out["model_garden_from"].endswith("operator/model_garden/__init__.py")


def test_tiny_model_loads_and_generates(tiny_model) -> None:  # type: ignore[no-untyped-def]
    code = f"""
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(tiny_model)!r})
model = AutoModelForCausalLM.from_pretrained({str(tiny_model)!r})
ids = tok.apply_chat_template([{{"role": "user", "content": "Describe the pets. a red cat"}}],
                              add_generation_prompt=True, return_tensors="pt", return_dict=True)
out = model.generate(**ids, max_new_tokens=4, do_sample=False)
print(out.shape[1] - ids["input_ids"].shape[1], sum(p.numel() for p in model.parameters()))
"""
    new_tokens, params = map(int, run_runtime(["-c", code]).stdout.split()[-2:])
    assert new_tokens >= 1 and 50_000 < params < 500_000
