#!/usr/bin/env bash
# Prepare, on the host, the inputs an offline image build needs, since nothing can be pulled:
#   - localhost/model-garden/debian-python:bookworm      (operator base: python3.11, CA certs)
#   - localhost/model-garden/debian-python-cpu:bookworm  (runtime-cpu base: + libgomp1, libnuma1,
#                                                         libtcmalloc-minimal4)
#   - localhost/model-garden/uv:<host uv version>         (/uv and /uvx, like ghcr.io/astral-sh/uv)
# Debian root filesystems come from mmdebstrap with the machine's own apt sources; each tarball is
# cached under $CACHE/bases keyed by its package list, each image imported only when missing.
#   offline-inputs.sh ENGINE CACHE    # prints NAME=IMAGE lines: BASE_OPERATOR, BASE_CPU, UV_IMAGE
set -euo pipefail
engine="$1"
cache="$2"
mkdir -p "$cache/bases"

have_image() { "$engine" image exists "$1" 2>/dev/null || "$engine" image inspect "$1" >/dev/null 2>&1; }

debian_base() {  # debian_base IMAGE PACKAGES : mmdebstrap (cached) + import
  local image="$1" packages="$2" key tar
  key="$(printf '%s\n' "$packages" "mmdebstrap-minbase-bookworm-nodoc-v1" | sha256sum | cut -c1-16)"
  tar="$cache/bases/debian-$key.tar"
  if [[ ! -f "$tar" ]]; then
    command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing (apt-get install mmdebstrap)" >&2; return 1; }
    # Docs, man pages and locales are dropped (copyright files kept), as the slim images do.
    mmdebstrap --quiet --variant=minbase --include="$packages" \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      bookworm "$tar.partial.tar" >&2
    mv "$tar.partial.tar" "$tar"
  fi
  local tagged="$image-$key"
  if ! have_image "$tagged"; then
    "$engine" import --change 'CMD ["/bin/bash"]' "$tar" "$tagged" >&2
  fi
  echo "$tagged"
}

uv_image() {  # the host's uv binary as an image, so the Containerfiles' `FROM ${UV_IMAGE}` works
  local uv version image dir candidate
  uv=""
  # `uv` on PATH may be a shim script (pyenv); the image needs the binary itself.
  for candidate in "$(python3 -c 'import uv; print(uv.find_uv_bin())' 2>/dev/null)" \
      "$(readlink -f "$(command -v uv)")"; do
    if [[ -f "$candidate" ]] && head -c4 "$candidate" | grep -q ELF; then uv="$candidate"; break; fi
  done
  [[ -n "$uv" ]] || { echo "no uv binary found (pip install uv)" >&2; return 1; }
  version="$("$uv" --version | awk '{print $2}')"
  image="localhost/model-garden/uv:$version"
  if ! have_image "$image"; then
    dir="$(mktemp -d)"
    cp "$uv" "$dir/uv"
    [[ -x "$(dirname "$uv")/uvx" ]] && cp "$(dirname "$uv")/uvx" "$dir/uvx"
    tar -C "$dir" -cf "$dir.tar" .
    "$engine" import "$dir.tar" "$image" >&2
    rm -rf "$dir" "$dir.tar"
  fi
  echo "$image"
}

# Assigned first, so that a failed step stops the script (`set -e` ignores `echo "$(…)"`).
base_operator="$(debian_base localhost/model-garden/debian-python:bookworm python3.11,ca-certificates)"
base_cpu="$(debian_base localhost/model-garden/debian-python-cpu:bookworm \
  python3.11,ca-certificates,libgomp1,libnuma1,libtcmalloc-minimal4)"
uv="$(uv_image)"
echo "BASE_OPERATOR=$base_operator"
echo "BASE_CPU=$base_cpu"
echo "UV_IMAGE=$uv"
