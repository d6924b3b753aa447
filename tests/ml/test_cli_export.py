"""``model-garden export`` as a user runs it: a LoRA version trained by ``mg train --local``
is merged into its base and saved as safetensors; the folder loads with transformers, gives the
logits of base + adapter, and generates. A merged (imported) version is copied. GGUF (f16,
Q8_0) comes from llama.cpp's converter and loads and generates with llama-cpp-python
(``$MODEL_GARDEN_LLAMA_CPP``, built by scripts/build-llama-cpp.sh)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_home import lora_and_base, mg

from harness.runtime import run_runtime
from model_garden.local.store import LocalStore

pytestmark = pytest.mark.ml


@pytest.fixture(scope="module")
def home(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """pets-v1: a LoRA adapter trained by the CLI; tiny-v1: the base model, imported (merged)."""
    root = tmp_path_factory.mktemp("cli-export")
    env = lora_and_base(root, tiny_model, rows=120, max_steps=8)
    return {"env": env, "root": root, "store": LocalStore(root / "home"), "base": tiny_model}


@pytest.fixture(scope="module")
def exported(home: dict[str, Any]) -> dict[str, Any]:
    out = home["root"] / "pets-merged"
    proc = mg(home["env"], "export", "pets-v1", "--format", "merged", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"out": out, "stdout": proc.stdout}


def test_the_adapter_is_merged_into_safetensors_with_its_tokenizer(
    home: dict[str, Any], exported: dict[str, Any]
) -> None:
    out: Path = exported["out"]
    assert f"exported pets-v1 (adapter merged into {home['base']}) to {out}" in exported["stdout"]
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= names, names
    assert "export.json" in names and "adapter_config.json" not in names
    assert "library_name: transformers" in (out / "README.md").read_text()


def test_the_export_is_counted_in_the_versions_carbon(
    home: dict[str, Any], exported: dict[str, Any]
) -> None:
    status = home["store"].get("ModelVersion", "pets-v1")["status"]
    ops = status["carbonByOperation"]
    spent = json.loads((exported["out"] / "export.json").read_text())["carbon"]
    assert ops["export"]["count"] >= 1
    assert ops["export"]["emissionsKg"] >= spent["emissionsKg"] > 0
    assert {"training", "verification", "export"} <= set(ops)
    assert status["lifetimeEmissionsKg"] == pytest.approx(
        sum(v["emissionsKg"] for v in ops.values())
    )


def test_the_export_is_carbon_tracked_and_recorded(exported: dict[str, Any]) -> None:
    result = json.loads((exported["out"] / "export.json").read_text())
    assert result["outcome"] == "Succeeded" and result["how"] == "merged"
    carbon = result["carbon"]
    assert carbon["energyKwh"] > 0 and carbon["emissionsKg"] > 0
    assert carbon["method"] in ("measured", "estimated")
    assert "CO2e (" in exported["stdout"] and "spent " in exported["stdout"]
    card = (exported["out"] / "README.md").read_text()
    assert "## Export" in card and "CO2e" in card


LOAD_AND_GENERATE = """
import json, sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
merged_dir, base_dir, adapter_dir = sys.argv[1:4]
tok = AutoTokenizer.from_pretrained(merged_dir)
merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32).eval()
ids = tok("### Instruction:\\nDescribe the pets.", return_tensors="pt")["input_ids"]
with torch.no_grad():
    plain = base(ids).logits
    peft = PeftModel.from_pretrained(base, adapter_dir).eval()
    adapted, got = peft(ids).logits, merged(ids).logits
    out = merged.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
print(json.dumps({
    "same_as_adapter": bool(torch.allclose(adapted, got, atol=1e-4)),
    "differs_from_base": float((plain - got).abs().max()),
    "new_tokens": int(out.shape[1] - ids.shape[1]),
    "text": tok.decode(out[0, ids.shape[1]:]),
}))
"""


def test_the_exported_folder_loads_and_generates(
    home: dict[str, Any], exported: dict[str, Any]
) -> None:
    mv = home["store"].get("ModelVersion", "pets-v1")
    adapter = home["store"].local_path(mv["spec"]["artifact"]["uri"])
    proc = run_runtime(
        ["-c", LOAD_AND_GENERATE, str(exported["out"]), str(home["base"]), str(adapter)]
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["same_as_adapter"], got  # the merge is base + adapter, not the base alone
    assert got["differs_from_base"] > 1e-3, got
    assert got["new_tokens"] == 8, got


def test_a_merged_version_is_copied(home: dict[str, Any]) -> None:
    out = home["root"] / "tiny-copy"
    proc = mg(home["env"], "export", "tiny-v1", "--out", str(out), "-o", "json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["how"] == "copied" and result["carbon"]["energyKwh"] > 0
    assert (out / "model.safetensors").read_bytes() == (
        home["base"] / "model.safetensors"
    ).read_bytes()


def test_an_occupied_out_folder_is_refused_untouched(
    home: dict[str, Any], exported: dict[str, Any]
) -> None:
    before = sorted(p.name for p in exported["out"].iterdir())
    proc = mg(home["env"], "export", "pets-v1", "--out", str(exported["out"]))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"Error: --out {exported['out']}: exists and is not an empty folder"
    ]
    assert sorted(p.name for p in exported["out"].iterdir()) == before


@pytest.fixture(scope="module")
def llama_cpp() -> Path:
    """scripts/build-llama-cpp.sh's folder; like the ML runtime, a missing one fails the test."""
    home = os.environ.get("MODEL_GARDEN_LLAMA_CPP")
    if not home:
        pytest.fail(
            'MODEL_GARDEN_LLAMA_CPP is not set: export MODEL_GARDEN_LLAMA_CPP="$(scripts/build-llama-cpp.sh)"'
        )
    return Path(home)


PROMPT = "### Instruction:\nDescribe the pets.\n\n### Input:\na red cat\n\n### Response:\n"
HF_TOKENS = """
import json, sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
print(json.dumps(tok(sys.argv[2], add_special_tokens=False)["input_ids"]))
"""
LLAMA_GENERATE = """
import json, sys
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=128, verbose=False, seed=0)
out = llm.create_completion(sys.argv[2], max_tokens=8, temperature=0)
print(json.dumps({
    "tokens": llm.tokenize(sys.argv[2].encode(), add_bos=False),
    "generated": out["usage"]["completion_tokens"],
    "text": out["choices"][0]["text"],
}))
"""


@pytest.mark.parametrize("fmt", ["gguf-f16", "gguf-q8_0"])
def test_gguf_loads_and_generates_with_llama_cpp(
    home: dict[str, Any], exported: dict[str, Any], llama_cpp: Path, fmt: str
) -> None:
    out = home["root"] / fmt
    proc = mg(home["env"], "export", "pets-v1", "--format", fmt, "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    gguf = out / f"pets-v1-{fmt.removeprefix('gguf-')}.gguf"
    assert f"to {gguf} as GGUF ({fmt.removeprefix('gguf-')})" in proc.stdout
    # the tiny model's tokenizer is one the converter does not know: mapped, and said so
    assert "mapped to gpt-2" in proc.stdout
    result = json.loads((out / "export.json").read_text())
    assert result["files"] == ["README.md", gguf.name] and result["how"] == "merged"
    assert result["carbon"]["energyKwh"] > 0 and result["notes"]
    got = subprocess.run(
        [str(llama_cpp / "venv" / "bin" / "python"), "-c", LLAMA_GENERATE, str(gguf), PROMPT],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr[-3000:]
    llama = json.loads(got.stdout.strip().splitlines()[-1])
    assert llama["generated"] >= 1, llama
    hf = run_runtime(["-c", HF_TOKENS, str(exported["out"]), PROMPT])
    assert llama["tokens"] == json.loads(hf.stdout.strip().splitlines()[-1])  # same tokenizer
