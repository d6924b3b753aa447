#!/usr/bin/env bash
# Build Kubernetes binaries from Debian's `kubernetes` source package and cache them outside the
# checkout, keyed by version. Shared by scripts/build-envtest.sh (apiserver, controller-manager)
# and scripts/build-node.sh (kubelet, scheduler, proxy), which keep separate caches so the fast
# suite never waits for the node's binaries.
#
#   build-kube-binaries.sh CACHE_SUBDIR "EXTRA APT PACKAGES" BINARY...
#
# Why from source: no registry we can reach ships these binaries, and kind/minikube need a
# Docker engine. See ../shared/TOOLCHAIN.md. Prints the cache directory on its last line.
set -euo pipefail

SUBDIR="$1" EXTRA_PKGS="$2"
shift 2
BINS=("$@")
KUBE_SRC_VERSION="${KUBE_SRC_VERSION:-1.20.2}"
CACHE_ROOT="${MODEL_GARDEN_CACHE:-$HOME/.cache/model-garden}"
OUT="$CACHE_ROOT/$SUBDIR/kubernetes-$KUBE_SRC_VERSION"

have_all() { for b in "${BINS[@]}"; do [[ -x "$OUT/$b" ]] || return 1; done; }
if have_all; then
  echo "$OUT"
  exit 0
fi

need_pkgs=()
# shellcheck disable=SC2086 # EXTRA_PKGS is a space-separated list
for p in golang-go rsync golang-github-modern-go-reflect2-dev dpkg-dev make $EXTRA_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mg-$SUBDIR.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# A private deb-src list derived from the machine's own apt sources (no mirror written here).
mkdir -p "$WORK/apt/parts" "$WORK/apt/lists/partial"
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f "$f" ]] || continue
  sed -E 's/^Types:.*/Types: deb-src/' "$f" >"$WORK/apt/parts/$(basename "$f")"
done
if [[ -f /etc/apt/sources.list ]]; then
  grep -E '^deb ' /etc/apt/sources.list | sed -E 's/^deb /deb-src /' >"$WORK/apt/sources.list" || true
else
  : >"$WORK/apt/sources.list"
fi
APT_OPTS=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o "Dir::Etc::SourceParts=$WORK/apt/parts"
  -o "Dir::State::Lists=$WORK/apt/lists")
apt-get "${APT_OPTS[@]}" update -qq
mkdir -p "$WORK/src"
(cd "$WORK/src" && apt-get "${APT_OPTS[@]}" source --download-only kubernetes >/dev/null)
case "$(basename "$WORK"/src/kubernetes_*.dsc)" in
  *"$KUBE_SRC_VERSION"*) ;;
  *) echo "Debian's kubernetes source is not $KUBE_SRC_VERSION: $(ls "$WORK"/src)" >&2; exit 1 ;;
esac
(cd "$WORK/src" && dpkg-source --no-check -x ./*.dsc tree >/dev/null)
TREE="$WORK/src/tree"

# The vendored reflect2 1.0.1 crashes (SIGSEGV in mapiterinit) under Go >= 1.18.
REFLECT2="$TREE/vendor/github.com/modern-go/reflect2"
rm -f "$REFLECT2"/*.go "$REFLECT2"/*.s
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$REFLECT2/"
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$REFLECT2/" 2>/dev/null || true
rm -f "$REFLECT2"/*_test.go

export GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache" CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=vendor
mkdir -p "$GOPATH/src/k8s.io"
ln -s "$TREE" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"
export GO111MODULE=off
for b in "${BINS[@]}"; do
  make WHAT="cmd/$b"
done

mkdir -p "$OUT.tmp"
for b in "${BINS[@]}"; do cp "_output/bin/$b" "$OUT.tmp/"; done
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "$OUT"
