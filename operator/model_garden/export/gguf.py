"""GGUF from a merged model folder, with llama.cpp's own converter (runtime only).

``convert_hf_to_gguf.py`` (shipped in llama-cpp-python's sdist; ``scripts/build-llama-cpp.sh``
puts it in a cache) runs in the ML runtime, as a child process: it needs torch, transformers
and its bundled ``gguf-py``, no compiler. It refuses a byte-level BPE tokenizer whose
pre-tokenizer it cannot identify by hash (the tiny test model's tokenizer is one); such a
tokenizer is mapped to ``gpt-2`` (the byte-level pre-tokenizer llama.cpp knows), and the
result says so. Any other refusal stays an error.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OUTTYPES = {"gguf-f16": "f16", "gguf-q8_0": "q8_0"}
MAPPED_MARK = "model-garden: unrecognised BPE pre-tokenizer mapped to gpt-2"

# Runs the converter as its __main__, with the one fallback above.
SHIM = f"""
import runpy, sys
converter = sys.argv.pop(1)
root = converter.rsplit("/", 1)[0]
sys.path[:0] = [root, root + "/gguf-py"]
import conversion.base as base
known = base.TextModel.get_vocab_base_pre
def pre(self, tokenizer):
    try:
        return known(self, tokenizer)
    except NotImplementedError:
        print({MAPPED_MARK!r}, file=sys.stderr, flush=True)
        return "gpt-2"
base.TextModel.get_vocab_base_pre = pre
sys.argv[0] = converter
runpy.run_path(converter, run_name="__main__")
"""


class ConversionFailed(RuntimeError):
    """The converter exited non-zero; the message is the end of its log."""


def convert(converter: str, model_dir: Path, out_file: Path, fmt: str) -> list[str]:
    """Write ``out_file`` from ``model_dir``; the notes a person should read (the mapping)."""
    if not Path(converter).is_file():
        raise ConversionFailed(f"no converter at {converter}")
    args = [sys.executable, "-c", SHIM, converter, str(model_dir)]
    args += ["--outtype", OUTTYPES[fmt], "--outfile", str(out_file)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0 or not out_file.is_file():
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise ConversionFailed(f"convert_hf_to_gguf.py exited {proc.returncode}: {tail}")
    notes = []
    if MAPPED_MARK in proc.stderr:
        notes.append(
            "the tokenizer's BPE pre-tokenizer is not one llama.cpp recognises: mapped to gpt-2"
        )
    return notes
