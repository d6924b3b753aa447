#!/usr/bin/env bash
# Build checkov (PyPI) into its own venv, cached outside the checkout and keyed by the hash of
# scripts/checkov-requirements.txt; print the path of the checkov executable.
# Why not a dev dependency: resolved together with the project's locked extras, checkov's pins
# (e.g. packaging<24, numpy, datasets) downgrade vLLM, datasets and numpy in uv.lock.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$root/scripts/checkov-requirements.txt"
key="$(sha256sum "$req" | cut -c1-16)"
out="${MODEL_GARDEN_CACHE:-$HOME/.cache/model-garden}/checkov/$key"
# The marker is written last: a half-built venv (an interrupted run) is rebuilt, never used.
if [[ -f "$out/complete" && -x "$out/venv/bin/checkov" ]]; then echo "$out/venv/bin/checkov"; exit 0; fi
rm -rf "$out"; mkdir -p "$out"  # built in place: a venv's scripts name its absolute path
uv venv -q --python 3.11 "$out/venv" >&2
VIRTUAL_ENV="$out/venv" uv pip install -q -r "$req" >&2
"$out/venv/bin/checkov" --version >&2
touch "$out/complete"
echo "$out/venv/bin/checkov"
