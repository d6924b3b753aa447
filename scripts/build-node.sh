#!/usr/bin/env bash
# Build kubelet, kube-scheduler and kube-proxy (the real node of tests/cluster) from Debian's
# `kubernetes` source package, cached outside the checkout by version
# (scripts/lib/build-kube-binaries.sh).
#
# Why a separate script and cache key: the envtest binaries stay cheap for the fast suite; only
# the cluster suite (tests/cluster) needs a node. See docs/node.md. Prints the cache directory
# on its last line.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/lib/build-kube-binaries.sh" node "" \
  kubelet kube-scheduler kube-proxy
