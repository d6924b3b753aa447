"""``spec.traffic``: split requests between two ModelVersions (canary, blue-green), pure logic.

Each version runs in its own Deployment (``<deployment>-<version>``, pods labelled with the
version). Where the Gateway API serves HTTPRoute, an ``HTTPRoute`` sends each version's exact
share through per-version Services; everywhere, the deployment's own Service selects the pods
of every version with a weight above 0 and the replicas are split by weight, so in-cluster
callers of the Service get about the same shares (replica-weighted).

Rounding of the split (``split_replicas``): each version with a weight gets
floor(R x weight / 100), the replicas left go to the largest remainders (ties: list order),
then a version with a weight above 0 and 0 replicas gets 1 (so the total can exceed R by one
when R is too small for a small weight, e.g. R=1 at 90/10 runs 1+1). A version at weight 0
(blue-green's idle colour) keeps R replicas, Ready for the switch, and receives no request; a
rolled-back version keeps its Deployment as it is (see ``plan_shares``).

Roll back: a version whose Deployment reports ``ProgressDeadlineExceeded`` (the Deployment
controller's own verdict after ``spec.rollout.progressDeadlineSeconds``) while the other
version is Ready gets weight 0 in what is rendered, the other 100; the spec is not rewritten,
status.traffic and the ``RolledBack`` condition say what is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from model_garden.api.labels import LABEL_IDEP

from ..plan import child_meta, child_name

LABEL_SERVING_VERSION = "modelgarden.dev/serving-version"
"""On pods of a traffic split: the ModelVersion they serve (the Services select by it)."""


@dataclass(frozen=True)
class Share:
    """One version of the split as rendered."""

    model_version: str
    weight: int
    """The weight rendered (the spec's, or 0/100 after a roll back)."""
    replicas: int
    rolled_back: bool = False


def deployment_name(idep: str, model_version: str) -> str:
    return child_name(idep, model_version)


def deployment_names(body: dict[str, Any], observed: Sequence[dict[str, Any]]) -> list[str]:
    """The Deployments a deployment runs or ran: its own name without ``spec.traffic``, one
    per listed version with it, and every observed one (to clean up leftovers)."""
    name = body["metadata"]["name"]
    traffic = (body.get("spec") or {}).get("traffic") or []
    wanted = [deployment_name(name, t["modelVersion"]) for t in traffic] if traffic else [name]
    seen = [str(d["metadata"]["name"]) for d in observed]
    return list(dict.fromkeys([*wanted, *seen]))


def split_replicas(total: int, weights: Sequence[int]) -> list[int]:
    """Replicas per version for ``weights`` (summing to 100) out of ``total`` (module doc)."""
    if total == 0:  # scaled to zero: every version
        return [0 for _ in weights]
    positive = [w for w in weights if w > 0]
    exact = [total * w / 100 for w in positive]
    out = [int(x) for x in exact]
    left = total - sum(out)
    order = sorted(range(len(positive)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[:left]:
        out[i] += 1
    out = [max(n, 1) for n in out]
    shares = iter(out)
    return [next(shares) if w > 0 else total for w in weights]


def deadline_exceeded(deployment: dict[str, Any] | None) -> bool:
    """The Deployment controller gave up on the rollout (Progressing False,
    ProgressDeadlineExceeded)."""
    for cond in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return str(cond.get("status")) == "False"
    return False


def deployment_ready(deployment: dict[str, Any] | None) -> bool:
    """All wanted pods of the current template are ready (the controller saw the spec; none
    wanted: rolled out too)."""
    if deployment is None:
        return False
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    generation = int((deployment.get("metadata") or {}).get("generation") or 0)
    raw = spec.get("replicas")
    wanted = int(raw) if raw is not None else 1
    return (
        int(status.get("observedGeneration") or 0) >= generation
        and int(status.get("updatedReplicas") or 0) >= wanted
        and int(status.get("readyReplicas") or 0) >= wanted
    )


def _serving(deployment: dict[str, Any] | None) -> bool:
    """Rolled out with a ready pod: it can take the traffic of a version rolled back."""
    ready = int(((deployment or {}).get("status") or {}).get("readyReplicas") or 0)
    return deployment_ready(deployment) and ready >= 1


def plan_shares(
    entries: Sequence[tuple[str, int]],
    total: int,
    deployments: dict[str, dict[str, Any] | None],
) -> list[Share]:
    """The rendered split: the spec's weights, unless one version's rollout exceeded its
    deadline while the other is Ready (then 0 and 100: rolled back)."""
    weights = [w for _, w in entries]
    failed = [deadline_exceeded(deployments.get(mv)) for mv, _ in entries]
    ready = [_serving(deployments.get(mv)) for mv, _ in entries]
    rolled = [False] * len(entries)
    if len(entries) == 2:
        for i, j in ((0, 1), (1, 0)):
            if failed[i] and weights[i] > 0 and ready[j]:
                weights, rolled = [0, 0], [False, False]
                weights[j], rolled[i] = 100, True
                break
    replicas = split_replicas(total, weights)
    for i, rb in enumerate(rolled):
        observed = ((deployments.get(entries[i][0]) or {}).get("spec") or {}).get("replicas")
        if rb and observed is not None:
            # as it is: a changed spec would restart the Deployment controller's clock and
            # clear the verdict the roll back stands on (it would flap back and forth)
            replicas[i] = int(observed)
    return [
        Share(mv, w, r, rb)
        for (mv, _), w, r, rb in zip(entries, weights, replicas, rolled, strict=True)
    ]


def service_selector(idep: str, shares: Sequence[Share]) -> dict[str, str]:
    """The deployment Service's selector: every version when all have a weight, else only the
    one with a weight (Service selectors have no 'in', and two versions is the most)."""
    live = [s for s in shares if s.weight > 0]
    if len(live) == 1:
        return {LABEL_IDEP: idep, LABEL_SERVING_VERSION: live[0].model_version}
    return {LABEL_IDEP: idep}


def build_route(
    body: dict[str, Any],
    labels: dict[str, str],
    api_version: str,
    parent: dict[str, Any],
    shares: Sequence[Share],
    port: int,
) -> dict[str, Any]:
    """The HTTPRoute: every request to the parent Gateway's listener, weighted per version's
    Service (a weight-0 backend stays listed: switching back is one weight change)."""
    name = body["metadata"]["name"]
    return {
        "apiVersion": api_version,
        "kind": "HTTPRoute",
        "metadata": child_meta(body, name, labels),
        "spec": {
            "parentRefs": [parent],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {  # group left out: "" (core) is its default, and 1.20's
                            # server-side apply reads an explicit "" as null
                            "kind": "Service",
                            "name": deployment_name(name, s.model_version),
                            "port": port,
                            "weight": s.weight,
                        }
                        for s in shares
                    ],
                }
            ],
        },
    }
