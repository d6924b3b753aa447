#!/usr/bin/env bash
# Install everything the tests and local mode need on a fresh machine, reusing caches kept
# outside the checkout (keyed by their inputs): uv, the control-plane venv, the envtest
# binaries, the CPU ML runtime, kubectl/helm. Idempotent; a warm second run takes seconds.
#
#   source scripts/bootstrap.sh     # exports MODEL_GARDEN_RUNTIME_PYTHON, MODEL_GARDEN_ENVTEST_DIR,
#                                   # MODEL_GARDEN_NODE_DIR (kubelet, scheduler, proxy),
#                                   # MODEL_GARDEN_KUBE_TOOLS, MODEL_GARDEN_LLAMA_CPP (GGUF)
#                                   # and puts uv on PATH
#   MODEL_GARDEN_BOOTSTRAP=runtime source scripts/bootstrap.sh
#                                   # only what local mode needs (uv, venv, ML runtime): the main
#                                   # job never starts a kube-apiserver, so it never waits for one
set -euo pipefail
_mg_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

_mg_phase() {  # _mg_phase NAME COMMAND... : run a phase, print how long it took, pass on its status
  local name="$1" start=$SECONDS status=0
  shift
  "$@" || status=$?
  echo "[phase] $name: $((SECONDS - start))s" >&2
  return "$status"
}

_mg_uv() {
  if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install -q --disable-pip-version-check uv >&2
  fi
  export PATH="$HOME/.local/bin:$PATH"
}

_mg_apt() {
  local need=()
  # runc before podman, so that podman's "crun | runc" takes runc (crun refuses cgroup v1/hybrid
  # hosts like these), and mmdebstrap: scripts/build-images. containerd, the CNI plugins,
  # iptables, conntrack, iproute2: the test node (tests/harness/node.py). chromium: the
  # dashboard's browser tests (tests/browser, Playwright drives Debian's build).
  for p in etcd-server openssl prometheus runc podman mmdebstrap containerd containernetworking-plugins iptables conntrack iproute2 chromium; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if ((${#need[@]})); then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
  fi
}

_mg_phase "uv" _mg_uv
if [[ "${MODEL_GARDEN_BOOTSTRAP:-all}" != "runtime" ]]; then _mg_phase "apt" _mg_apt; fi
_mg_phase "control-plane venv (uv sync --frozen)" uv sync --frozen --project "$_mg_root" -q

_mg_runtime() {
  # A failed runtime build must stop the bootstrap: capture the script's output and test its
  # status explicitly (`eval "$(...)"` drops it, and `set -e` is off inside an `if` condition).
  local exports
  exports="$(bash "$_mg_root/scripts/build-cpu-runtime.sh")" || return 1
  eval "$exports"
  if [[ ! -x "${MODEL_GARDEN_RUNTIME_PYTHON:-}" ]]; then
    echo "the CPU ML runtime build did not name a Python: $exports" >&2
    return 1
  fi
}

if [[ "${MODEL_GARDEN_BOOTSTRAP:-all}" == "runtime" ]]; then
  _mg_phase "CPU ML runtime" _mg_runtime
  export MODEL_GARDEN_RUNTIME_PYTHON
  return 0 2>/dev/null || exit 0
fi

# The envtest build is CPU-bound, the runtime install network-bound: run them side by side.
_mg_envtest_log="$(mktemp)"
( bash "$_mg_root/scripts/build-envtest.sh" >"$_mg_envtest_log" 2>&1 ) &
_mg_envtest_pid=$!
# kubelet, kube-scheduler, kube-proxy for the test node (tests/cluster), same recipe and overlap.
_mg_node_log="$(mktemp)"
( bash "$_mg_root/scripts/build-node.sh" >"$_mg_node_log" 2>&1 ) &
_mg_node_pid=$!
if ! _mg_phase "CPU ML runtime" _mg_runtime; then
  kill "$_mg_envtest_pid" "$_mg_node_pid" 2>/dev/null || true
  echo "CPU ML runtime build failed" >&2
  exit 1
fi
_mg_images() {
  # The operator and CPU images, built offline from the uv cache the phases above filled; cached
  # by their inputs (scripts/build-images), so a warm run takes seconds.
  local exports
  exports="$(bash "$_mg_root/scripts/build-images" --offline)" || return 1
  eval "$exports"
}
if ! _mg_phase "images" _mg_images; then
  kill "$_mg_envtest_pid" "$_mg_node_pid" 2>/dev/null || true
  echo "image build failed (scripts/build-images --offline)" >&2
  exit 1
fi
export MODEL_GARDEN_IMAGES MODEL_GARDEN_IMAGE_ENGINE
_mg_start=$SECONDS
if ! wait "$_mg_envtest_pid"; then
  kill "$_mg_node_pid" 2>/dev/null || true
  tail -50 "$_mg_envtest_log" >&2
  echo "envtest build failed" >&2
  exit 1
fi
MODEL_GARDEN_ENVTEST_DIR="$(tail -1 "$_mg_envtest_log")"
export MODEL_GARDEN_ENVTEST_DIR
echo "[phase] envtest binaries (waited after runtime): $((SECONDS - _mg_start))s" >&2
_mg_node() {
  if ! wait "$_mg_node_pid"; then
    tail -50 "$_mg_node_log" >&2
    echo "node binaries build failed (scripts/build-node.sh)" >&2
    return 1
  fi
  MODEL_GARDEN_NODE_DIR="$(tail -1 "$_mg_node_log")"
}
_mg_phase "node binaries (waited after envtest)" _mg_node || exit 1
export MODEL_GARDEN_NODE_DIR
rm -f "$_mg_node_log"
MODEL_GARDEN_KUBE_TOOLS="$(bash "$_mg_root/scripts/fetch-kube-tools.sh" | tail -1)"
export MODEL_GARDEN_KUBE_TOOLS
# checkov in its own cached venv (its pins conflict with uv.lock's extras): tests/chart.
MODEL_GARDEN_CHECKOV="$(_mg_phase "checkov venv" bash "$_mg_root/scripts/build-checkov.sh" | tail -1)"
export MODEL_GARDEN_CHECKOV
# llama.cpp from PyPI's llama-cpp-python sdist (compiled, cached): the GGUF converter of
# `mg export --format gguf-*` and a llama_cpp Python that loads its files (tests/ml).
MODEL_GARDEN_LLAMA_CPP="$(_mg_phase "llama.cpp (GGUF)" bash "$_mg_root/scripts/build-llama-cpp.sh" | tail -1)"
export MODEL_GARDEN_LLAMA_CPP
# helm 3 beside fetch-kube-tools.sh's helm 4: the chart supports both (tests/chart).
MODEL_GARDEN_HELM3="$(_mg_phase "helm 3" bash "$_mg_root/scripts/fetch-helm3.sh" | tail -1)"
export MODEL_GARDEN_HELM3
export MODEL_GARDEN_RUNTIME_PYTHON
rm -f "$_mg_envtest_log"
# The dashboard's npm dependencies (cached by package-lock.json's hash): tests/dashboard and
# tests/browser (axe-core). Prints the folder holding node_modules/.
MODEL_GARDEN_DASHBOARD_MODULES="$(_mg_phase "dashboard npm deps" bash "$_mg_root/scripts/build-dashboard-deps.sh" | tail -1)"
export MODEL_GARDEN_DASHBOARD_MODULES
