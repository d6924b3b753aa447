"""The read API as the chart installs it on a real node: its pod Ready under the restricted
profile, ``/api/v1/info`` answering from the pod IP, and a FineTuneJob listed for a token that
may list FineTuneJobs in its namespace and not for one that may not (SubjectAccessReview).

The FineTuneJob is created suspended (no trainer pod: the node's CPU stays with the scenario)
and deleted afterwards, with the two ServiceAccounts and the Role made here; what the chart
installed goes with `helm uninstall` (test_teardown.py).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .platform import (
    API,
    BASE_URI,
    DATASET_URI,
    RELEASE,
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    SYSTEM,
    TEAM,
    Platform,
    condition,
    wait_for,
)

pytestmark = pytest.mark.cluster

JOB = "readapi-listed"
READER = "readapi-reader"
STRANGER = "readapi-stranger"
READAPI_SA = f"{RELEASE}-model-garden-readapi"


def _readapi_pod(platform: Platform) -> dict[str, Any] | None:
    pods = platform.items("pods", SYSTEM, "app.kubernetes.io/component=readapi")
    ready = [p for p in pods if condition(p, "Ready").get("status") == "True"]
    return ready[0] if len(ready) == 1 else None


def _token(platform: Platform, account: str) -> str | None:
    """The ServiceAccount's token from its Secret (Kubernetes 1.20 still makes one per account)."""
    sa = platform.get("serviceaccount", account) or {}
    for ref in sa.get("secrets") or []:
        secret = platform.get("secret", ref["name"]) or {}
        token = (secret.get("data") or {}).get("token")
        if token:
            return base64.b64decode(token).decode()
    return None


@pytest.fixture(scope="module")
def readapi(platform: Platform) -> Iterator[dict[str, Any]]:
    """The Ready read API pod's URL, a suspended FineTuneJob, and the two callers' tokens."""
    pod = wait_for("the read API pod Ready", lambda: _readapi_pod(platform), 240, every=2)
    platform.apply(
        {
            "apiVersion": API,
            "kind": "FineTuneJob",
            "metadata": {"name": JOB, "namespace": TEAM},
            "spec": {
                "baseModel": {"uri": BASE_URI},
                "dataset": {"uri": DATASET_URI, "maxSeqLength": 64},
                "method": {"type": "lora"},
                "hyperparameters": {"maxSteps": 5},
                "suspend": True,
            },
        },
        *(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": n, "namespace": TEAM},
            }
            for n in (READER, STRANGER)
        ),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": READER, "namespace": TEAM},
            "rules": [
                {
                    "apiGroups": ["modelgarden.dev"],
                    "resources": ["finetunejobs"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": READER, "namespace": TEAM},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": READER},
            "subjects": [{"kind": "ServiceAccount", "name": READER, "namespace": TEAM}],
        },
    )
    try:
        yield {
            "pod": pod,
            "url": f"http://{pod['status']['podIP']}:8080",
            "reader": wait_for("the reader's token", lambda: _token(platform, READER), 60),
            "stranger": wait_for("the stranger's token", lambda: _token(platform, STRANGER), 60),
        }
    finally:
        for kind, name in (
            ("finetunejob", JOB),
            ("rolebinding", READER),
            ("role", READER),
            ("serviceaccount", READER),
            ("serviceaccount", STRANGER),
        ):
            platform.kubectl("delete", kind, name, "-n", TEAM, "--ignore-not-found", check=False)


def test_read_api_pod_is_ready_under_the_restricted_profile(readapi: dict[str, Any]) -> None:
    pod = readapi["pod"]
    assert pod["spec"]["securityContext"] == RESTRICTED_POD
    (container,) = pod["spec"]["containers"]
    assert RESTRICTED_CONTAINER.items() <= container["securityContext"].items()
    assert pod["spec"]["serviceAccountName"] == READAPI_SA
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] and status["restartCount"] == 0, status


def test_info_answers_from_the_pod_ip(readapi: dict[str, Any]) -> None:
    response = httpx.get(f"{readapi['url']}/api/v1/info", timeout=10)
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["mode"] == "cluster" and info["writes"] == "caller", info


def test_read_api_account_has_only_its_own_rights(platform: Platform) -> None:
    who = f"--as=system:serviceaccount:{SYSTEM}:{READAPI_SA}"

    def can(*args: str) -> bool:
        out = platform.kubectl("auth", "can-i", *args, who, check=False).stdout.strip()
        return out == "yes"

    assert can("create", "tokenreviews.authentication.k8s.io")
    assert can("create", "subjectaccessreviews.authorization.k8s.io")
    assert can("watch", "finetunejobs.modelgarden.dev", "-n", TEAM)
    assert not can("list", "secrets", "-n", TEAM)
    assert not can("patch", "inferencedeployments.modelgarden.dev", "-n", TEAM)
    assert not can("create", "finetunejobs.modelgarden.dev", "-n", TEAM)


def _listed(readapi: dict[str, Any], token: str) -> tuple[int, list[str]]:
    response = httpx.get(
        f"{readapi['url']}/api/v1/finetunejobs",
        params={"namespace": TEAM},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if response.status_code != 200:
        return response.status_code, []
    return 200, [j["metadata"]["name"] for j in response.json()["items"]]


def test_a_job_is_listed_only_for_a_token_that_may_list_it(readapi: dict[str, Any]) -> None:
    # The watch cache sees the new job within a few seconds.
    wait_for(
        "the job listed for the reader",
        lambda: JOB in _listed(readapi, readapi["reader"])[1],
        60,
    )
    status, names = _listed(readapi, readapi["stranger"])
    assert status in (200, 403) and JOB not in names, (status, names)
    anonymous = httpx.get(f"{readapi['url']}/api/v1/finetunejobs", timeout=10)
    assert anonymous.status_code == 401, anonymous.text
    bogus = httpx.get(
        f"{readapi['url']}/api/v1/finetunejobs",
        headers={"Authorization": "Bearer not-a-token"},
        timeout=10,
    )
    assert bogus.status_code == 401, bogus.text
    one = httpx.get(
        f"{readapi['url']}/api/v1/finetunejobs/{TEAM}/{JOB}",
        headers={"Authorization": f"Bearer {readapi['reader']}"},
        timeout=10,
    )
    assert one.status_code == 200 and json.loads(one.text)["spec"]["suspend"] is True
