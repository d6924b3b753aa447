"""How each documented command is tested: run for real here, or allow-listed with the reason.

A command in the docs that matches neither list fails the suite: whoever adds a command to a
page must make it run here (CLI with the local runtime, helm with the real binary, kubectl
against the envtest API server) or add it below with the reason it cannot.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# Commands that need what this machine does not have. Each entry: a pattern matched against the
# whole command line, and why it cannot run here. Every entry must match some documented command
# (an unused entry fails the suite, so the list cannot hide commands that were removed).
CANNOT_RUN: tuple[tuple[str, str], ...] = (
    # kind and the engines: no Docker/Podman engine here (../shared/TOOLCHAIN.md).
    (r"^kind (create|delete) cluster ", "kind needs a Docker or Podman engine; none here"),
    (r"^kind load ", "kind load copies images into a kind node: no engine, no kind node here"),
    (
        r"^kubectl cluster-info --context kind-",
        "the kubeconfig context exists only once kind made it",
    ),
    (r"^docker exec ", "runs inside a kind node container: no engine here"),
    (
        r"^scripts/build-images ",
        "builds container images for minutes (tests/images builds them with --offline, podman)",
    ),
    # GPU: no GPU and no NVIDIA driver on these machines.
    (r"^sudo nvidia-ctk ", "configures the NVIDIA Container Toolkit of a GPU host; no GPU here"),
    (r"^sudo systemctl restart docker", "restarts a Docker daemon; none here"),
    (
        r"^helm repo add nvidia ",
        "adds NVIDIA's Helm repository: no network beyond package registries",
    ),
    (r"^helm install gpu-operator ", "the GPU Operator needs its chart from NVIDIA and a GPU node"),
    # Things that need nodes (a kubelet, a scheduler): envtest has an API server and controllers only.
    (
        r"^kubectl (-n \S+ )?wait ",
        "waits for pods to run or jobs to finish: envtest has no kubelet",
    ),
    (r"^kubectl (-n \S+ )?rollout status ", "waits for pods to be Ready: envtest has no kubelet"),
    (r"^kubectl (-n \S+ )?port-forward ", "forwards to a running pod: envtest has no kubelet"),
    (
        r"^kubectl apply --server-side --force-conflicts -f charts/model-garden/crds/",
        "the form for Kubernetes >= 1.25: against envtest's 1.20 kubectl's schema check refuses the"
        " CEL field (the pre-1.25 form, --validate=false, runs here)",
    ),
    (r"^helm test ", "runs the chart's test pod against the running operator: needs nodes"),
    (r"^curl ", "talks to a port-forwarded endpoint or a published URL: needs a running cluster"),
)


@dataclass(frozen=True)
class Plan:
    """What to run for a documented command: a shell line (run by bash) and how."""

    how: str  # "local", "kube" (KUBECONFIG = envtest) or "render" (helm install/upgrade → template)
    script: str


def cannot_run(text: str) -> str | None:
    """The allow-list reason when ``text`` cannot run here, else None."""
    for pattern, reason in CANNOT_RUN:
        if re.search(pattern, text):
            return reason
    return None


# helm install/upgrade flags that `helm template` does not take or that only matter to a cluster.
_CLUSTER_ONLY_FLAGS = ("--create-namespace", "--wait", "--atomic", "--reuse-values", "--install")


def _render(text: str) -> str:
    """``helm install|upgrade R CHART FLAGS`` → ``helm template R CHART FLAGS``: the same values,
    --set flags and schema checks, rendered offline instead of sent to a cluster."""
    args = shlex.split(text)
    assert args[0] == "helm" and args[1] in {"install", "upgrade"}, text
    kept = [
        a for a in args[2:] if a not in _CLUSTER_ONLY_FLAGS and not a.startswith("--server-side")
    ]
    return shlex.join(["helm", "template", *kept])


def plan(text: str) -> Plan | None:
    """How to run a command for real here; None when no rule covers it."""
    if re.match(r"^helm (lint|template) ", text):
        return Plan("local", text)
    if re.match(r"^helm (install|upgrade) ", text):
        return Plan("render", _render(text))
    if re.match(r"^kubectl ", text):
        # A watch never ends: run the same query once (the short name and columns are checked).
        return Plan("kube", re.sub(r" (-w|--watch)\b", "", text))
    if re.match(r"^(model-garden|mkdir -p) ", text) or re.match(r"^cat > \S+ <<", text):
        return Plan("local", text)
    return None
