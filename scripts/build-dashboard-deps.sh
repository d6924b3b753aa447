#!/usr/bin/env bash
# Install the dashboard's npm dependencies once, outside the checkout, keyed by the sha256 of
# dashboard/package-lock.json; print the folder that holds node_modules/ on the last line.
# Why a cache: `uv sync` users never need Node (the built app is committed), and the tests and
# scripts/build-dashboard reuse one install instead of running npm on every checkout.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$root/dashboard/package-lock.json"
key="$(sha256sum "$lock" | cut -c1-16)"
base="${MODEL_GARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/model-garden}"
out="$base/dashboard-$key"
if [[ -d "$out/node_modules" && -f "$out/complete" ]]; then echo "$out"; exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "npm is not installed (Node 20 is needed)" >&2; exit 1; }
mkdir -p "$base"
# Install into a temporary sibling and rename it into place, so an interrupted run never
# leaves a half-filled folder under the final name.
tmp="$(mktemp -d "$base/.dashboard-$key.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cp "$root/dashboard/package.json" "$lock" "$tmp/"
echo "installing the dashboard's npm dependencies into $out" >&2
(cd "$tmp" && npm ci --no-audit --no-fund >&2)
touch "$tmp/complete"
if [[ -f "$out/complete" ]]; then
  rm -rf "$tmp"  # a concurrent run finished first: keep its folder, which may be in use
else
  rm -rf "$out"  # an incomplete leftover
  mv -T "$tmp" "$out"
fi
trap - EXIT
echo "$out"
