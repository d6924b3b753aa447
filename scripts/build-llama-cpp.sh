#!/usr/bin/env bash
# llama.cpp for GGUF export, from PyPI's llama-cpp-python sdist (which vendors llama.cpp): built
# once into a cache outside the checkout, keyed by its inputs (the version, the CMake flags, this
# script, the CPU's flags since GGML_NATIVE tunes for it); print that folder. It holds
#   converter/convert_hf_to_gguf.py  (+ conversion/, gguf-py/): `mg export --format gguf-*` runs
#                                    it in the ML runtime (no compiler needed for that part)
#   venv/bin/python                  a Python with llama_cpp: the tests load and generate with
#                                    each exported GGUF file
# Measured on 2 shared cores: download 76 MB ≈40 s, compile ≈6.5 min (tools, examples, tests
# and llava off); warm: instant.
set -euo pipefail
version=0.3.36
cmake_args="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=ON"
self="${BASH_SOURCE[0]}"
cpu="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m)"
key="$({ echo "$version $cmake_args"; cat "$self"; echo "$cpu"; } | sha256sum | cut -c1-16)"
out="${MODEL_GARDEN_CACHE:-$HOME/.cache/model-garden}/llama-cpp/$key"
# The marker is written last: a half-built folder (an interrupted run) is rebuilt, never used.
if [[ -f "$out/complete" ]]; then echo "$out"; exit 0; fi
rm -rf "$out"; mkdir -p "$out/sdist" "$out/converter"
uv venv -q --seed --python 3.11 "$out/venv" >&2  # built in place: a venv names its own path
pip=("$out/venv/bin/python" -m pip -q --disable-pip-version-check)
"${pip[@]}" download --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$out/sdist" >&2
sdist="$(ls "$out"/sdist/llama_cpp_python-*.tar.gz)"
# --no-cache-dir: pip's wheel cache does not know the CMake flags
CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  "${pip[@]}" wheel --no-cache-dir --no-deps "$sdist" -w "$out/wheel" >&2
VIRTUAL_ENV="$out/venv" uv pip install -q "$out"/wheel/llama_cpp_python-*.whl >&2
src="llama_cpp_python-$version/vendor/llama.cpp"
tar xzf "$sdist" -C "$out/converter" --strip-components=3 \
  "$src/convert_hf_to_gguf.py" "$src/conversion" "$src/gguf-py"
"$out/venv/bin/python" -c "import llama_cpp; print('llama_cpp', llama_cpp.__version__)" >&2
rm -rf "$out/sdist"
touch "$out/complete"
echo "$out"
