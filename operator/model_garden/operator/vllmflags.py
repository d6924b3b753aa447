"""Which vLLM flags a user may pass in ``spec.engine.extraArgs`` (for the admin policy).

Two tables: flags always refused (they run code, reach outside the pod, or set what the
operator sets, each with the reason a user reads) and the default allow-list of tuning flags.
An allow-list, not only a deny-list: vLLM's parser accepts abbreviations (``--trust-remote``)
and underscores (``--trust_remote_code``), so a flag not named is refused by default.
"""

from __future__ import annotations

REMOTE_CODE = "runs or imports code chosen by the user or a model repository"
OPERATOR_SET = "the operator sets it from the spec"

DENIED_EXTRA_ARGS: dict[str, str] = {
    # Code execution: remote code, Python classes or files imported by name, pickles.
    "--trust-remote-code": REMOTE_CODE,
    "--code-revision": REMOTE_CODE,
    "--worker-cls": REMOTE_CODE,
    "--worker-extension-cls": REMOTE_CODE,
    "--middleware": REMOTE_CODE,
    "--tool-parser-plugin": REMOTE_CODE,
    "--reasoning-parser-plugin": REMOTE_CODE,
    "--logits-processors": REMOTE_CODE,
    "--logits-processor-pattern": REMOTE_CODE,
    "--hf-overrides": REMOTE_CODE,
    "--load-format": "some loaders unpickle weights",
    "--model-loader-extra-config": REMOTE_CODE,
    "--distributed-executor-backend": REMOTE_CODE,
    "--config": "reads more flags from a file, past this policy",
    # Reaches outside the pod: files and network the operator did not choose.
    "--allowed-local-media-path": "reads files of the pod",
    "--download-dir": "the operator chooses where models are read from",
    "--otlp-traces-endpoint": "sends traces to an address the operator did not choose",
    # What the operator controls: the endpoint, its key, the model and the adapters.
    "--api-key": "the key is passed from spec.apiKeySecret by environment, never argv",
    "--host": OPERATOR_SET,
    "--port": OPERATOR_SET,
    "--uds": OPERATOR_SET,
    "--root-path": OPERATOR_SET,
    "--ssl-keyfile": OPERATOR_SET,
    "--ssl-certfile": OPERATOR_SET,
    "--ssl-ca-certs": OPERATOR_SET,
    "--allowed-origins": OPERATOR_SET,
    "--allow-credentials": OPERATOR_SET,
    "--model": OPERATOR_SET,
    "--tokenizer": OPERATOR_SET,
    "--revision": OPERATOR_SET,
    "--tokenizer-revision": OPERATOR_SET,
    "--served-model-name": "set spec.servedModelName",
    "--enable-lora": "set spec.adapters / spec.dynamicAdapters",
    "--no-enable-lora": "set spec.adapters / spec.dynamicAdapters",
    "--lora-modules": "set spec.adapters",
    "--max-lora-rank": "set spec.engine.maxLoraRank",
    "--max-loras": "set spec.engine.maxLoras",
    "--tensor-parallel-size": "set spec.engine.tensorParallelSize",
    "-tp": "set spec.engine.tensorParallelSize",
    "--pipeline-parallel-size": OPERATOR_SET,
    "-pp": OPERATOR_SET,
    "--dtype": "set spec.engine.dtype",
    "--max-model-len": "set spec.engine.maxModelLen",
    "--gpu-memory-utilization": "set spec.engine.gpuMemoryUtilization",
    "--quantization": "set spec.engine.quantization",
    "-q": "set spec.engine.quantization",
    "--device": OPERATOR_SET,
}
"""Flags refused even where ``allowedExtraArgs`` is ``*``, each with the reason users see."""

DEFAULT_ALLOWED_EXTRA_ARGS = (
    "--max-num-seqs",
    "--max-num-batched-tokens",
    "--max-seq-len-to-capture",
    "--enable-prefix-caching",
    "--no-enable-prefix-caching",
    "--enable-chunked-prefill",
    "--no-enable-chunked-prefill",
    "--block-size",
    "--swap-space",
    "--cpu-offload-gb",
    "--kv-cache-dtype",
    "--enforce-eager",
    "--seed",
    "--scheduling-policy",
    "--num-scheduler-steps",
    "--disable-sliding-window",
    "--disable-log-requests",
    "--disable-log-stats",
    "--max-log-len",
    "--uvicorn-log-level",
    "--max-cpu-loras",
    "--lora-dtype",
    "--guided-decoding-backend",
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "--reasoning-parser",
    "--disable-fastapi-docs",
    "--enable-request-id-headers",
    "--return-tokens-as-token-ids",
)
"""Tuning flags that neither run code nor touch what the operator controls.

An allow-list, not only a deny-list: vLLM's parser accepts abbreviations (``--trust-remote``)
and underscores (``--trust_remote_code``), so anything not named here is refused by default.
"""


def flag_name(arg: str) -> str | None:
    """The flag an ``extraArgs`` element names (``--a_b=1`` -> ``--a-b``); None for a value."""
    if not arg.startswith("-") or _is_number(arg):
        return None
    name = arg.split("=", 1)[0]
    if name.startswith("--"):
        name = "--" + name[2:].replace("_", "-")
    return name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
