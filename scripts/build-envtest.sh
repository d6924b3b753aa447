#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager (the envtest control plane) from Debian's
# `kubernetes` source package, cached outside the checkout by version
# (scripts/lib/build-kube-binaries.sh). Prints the cache directory on its last line.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/lib/build-kube-binaries.sh" envtest etcd-server \
  kube-apiserver kube-controller-manager
