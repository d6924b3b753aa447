"""The vLLM flag sets that bench/serving_throughput.py compares on CPU, as plain data.

The unit tests read this file too: a deployment without adapters must get exactly the flags of
the :data:`BEST` row for its CPU, so a change to the launcher that drifts from the measured best
fails a test rather than a benchmark nobody reruns.

Rows depend on one thing the launcher decides per machine, the dtype: ``float32`` on a CPU
without native bf16 (AVX2), ``auto`` (vLLM's bfloat16) on one with AVX512-BF16 or AMX.
"""

MAX_MODEL_LEN = "512"
"""Every row caps the context the same way, so the KV cache and the scheduler see the same
limits (only the "defaults" row leaves it to the model's config)."""

ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
"""Every row, and the launcher: vLLM's CPU default sizes the KV cache from 92% of the NUMA node's
memory and refuses to start on a shared machine. 1 GiB holds 131,072 tokens of the bench's
Llama (2 x 4 layers x 256 floats x 4 bytes = 8 KiB per token), 16 times what c=16 x 512 needs."""

WITH_ADAPTERS = "eager, LoRA on"
"""What a deployment serving adapters runs: vLLM CPU cannot compile with LoRA on."""

BEST = "compiled, no LoRA"
"""The row that served fastest at concurrency 1, 4 and 16 in every ablation run
(docs/serving.md), given the CPU's dtype; prefix caching, chunked prefill, max batched tokens
and max sequences stay at vLLM's CPU defaults in every row."""

DEFAULTS = "vLLM defaults"


def rows(dtype: str) -> dict[str, list[str]]:
    """Row label -> the flags after ``--model``/``--served-model-name``/``--host``/``--port``,
    for ``dtype`` (``float32`` or ``auto``)."""
    common = ["--dtype", dtype, "--max-model-len", MAX_MODEL_LEN]
    return {
        WITH_ADAPTERS: [
            "--enforce-eager",
            *common,
            "--enable-lora",
            "--max-lora-rank",
            "16",
            "--max-loras",
            "4",
        ],
        "eager, no LoRA": ["--enforce-eager", *common],
        BEST: common,
    }


def ablation() -> dict[str, list[str]]:
    """Every row for both dtypes, and vLLM with no flag at all."""
    table = {
        f"{label}, {dtype}": flags
        for dtype in ("float32", "auto")
        for label, flags in rows(dtype).items()
    }
    table[DEFAULTS] = []
    return table
