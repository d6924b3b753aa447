"""What a NetworkPolicy admits, evaluated on live objects (ingress rules only).

The node's CNI (the reference `bridge` plugin) does not enforce NetworkPolicy, and no enforcing
CNI (Calico, Cilium, kube-router) can be had offline here. So the end-to-end test checks the
policy's intent instead: given the live pods and namespace labels, the rules admit the peers they
should and no others — what an enforcing CNI would then apply.
"""

from __future__ import annotations

from typing import Any


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector against labels ({} selects everything)."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _peer_admits(
    peer: dict[str, Any], policy_ns: str, pod: dict[str, Any], ns_labels: dict[str, str]
) -> bool:
    pod_ns, pod_labels = pod["metadata"]["namespace"], pod["metadata"].get("labels") or {}
    if "namespaceSelector" in peer:
        in_ns = selects(peer["namespaceSelector"], ns_labels)
    else:
        in_ns = pod_ns == policy_ns
    return in_ns and ("podSelector" not in peer or selects(peer["podSelector"], pod_labels))


def admits(
    policies: list[dict[str, Any]],
    target: dict[str, Any],
    port: int,
    source: dict[str, Any],
    source_ns_labels: dict[str, str],
) -> bool:
    """Whether ``source`` (a pod) may open TCP ``port`` on ``target`` (a pod) under ``policies``."""
    ns = target["metadata"]["namespace"]
    applying = [
        p
        for p in policies
        if p["metadata"]["namespace"] == ns
        and "Ingress" in (p["spec"].get("policyTypes") or ["Ingress"])
        and selects(p["spec"].get("podSelector"), target["metadata"].get("labels") or {})
    ]
    if not applying:
        return True  # not isolated
    for policy in applying:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports") or []
            if ports and not any(p.get("port") == port for p in ports):
                continue
            peers = rule.get("from") or []
            if not peers or any(_peer_admits(peer, ns, source, source_ns_labels) for peer in peers):
                return True
    return False
