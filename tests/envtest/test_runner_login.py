"""kopf and the executor carry on with the rotated token after a 401 (real kube-apiserver 1.20).

The operator starts with a ServiceAccount token read from a kubeconfig's ``tokenFile``. The
token is then revoked (its Secret deleted) and the file rewritten with the new one, as the
kubelet does with a projected token: kopf's next request gets 401, it calls the login handler
again, and that handler must read the new token (it used to return the one read at start); the
executor reconnects the same way, so the new job's children are created.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from envtest.test_operator import API, Cluster, finetunejob, in_ns, operator_settings, wait_for
from model_garden.operator.runner import OperatorThread, client_source, load_client

pytestmark = pytest.mark.envtest

KOPF_FINALIZER = "modelgarden.dev/kopf-finalizer"
SA = "operator-login"


def _token_secret(admin: Cluster, ns: str) -> dict[str, Any] | None:
    for secret in admin.x.call("GET", f"/api/v1/namespaces/{ns}/secrets").get("items") or []:
        annotations = secret["metadata"].get("annotations") or {}
        if (
            secret.get("type") == "kubernetes.io/service-account-token"
            and annotations.get("kubernetes.io/service-account.name") == SA
            and "token" in (secret.get("data") or {})
        ):
            return secret
    return None


def _kubeconfig(path: Path, server: str, token_file: Path) -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "e", "cluster": {"server": server, "insecure-skip-tls-verify": True}}
        ],
        "users": [{"name": "u", "user": {"tokenFile": str(token_file)}}],
        "contexts": [{"name": "e", "context": {"cluster": "e", "user": "u"}}],
        "current-context": "e",
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


def _has_kopf_finalizer(admin: Cluster, ns: str, name: str) -> bool:
    body = admin.get(API, "FineTuneJob", ns, name) or {}
    return KOPF_FINALIZER in (body.get("metadata") or {}).get("finalizers", [])


def test_kopf_logs_in_again_with_the_rotated_token(
    kube_env: Any, crds_installed: list[str], tmp_path: Path
) -> None:
    admin = Cluster(kube_env.api_client)
    ns = admin.namespace()
    first = kube_env.service_account_token(ns, SA)
    admin.x.call(
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": f"{ns}-{SA}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": ns}],
        },
    )
    token_file = tmp_path / "token"
    token_file.write_text(first)
    kubeconfig = tmp_path / "kubeconfig"
    _kubeconfig(kubeconfig, kube_env.server, token_file)
    settings = operator_settings()
    settings.namespaces = [ns]
    op = OperatorThread(load_client(kubeconfig), settings, reload=client_source(kubeconfig))
    op.start()
    try:
        admin.create(in_ns(finetunejob("before"), ns))
        wait_for("kopf's finalizer", lambda: _has_kopf_finalizer(admin, ns, "before"))

        # revoke the first token; the token controller issues a new one
        old = _token_secret(admin, ns)
        assert old is not None
        admin.x.call("DELETE", f"/api/v1/namespaces/{ns}/secrets/{old['metadata']['name']}")
        revoked = Cluster(load_client(kube_env.token_kubeconfig(first, "revoked")))

        def first_refused() -> bool:
            try:
                revoked.x.call("GET", f"/api/v1/namespaces/{ns}")
            except ApiException as exc:
                return exc.status == 401
            return False

        wait_for("the first token to be refused", first_refused)
        new = wait_for(
            "a new token",
            lambda: (
                (s := _token_secret(admin, ns))
                and s["metadata"]["name"] != old["metadata"]["name"]
                and base64.b64decode(s["data"]["token"]).decode()
            ),
        )
        token_file.write_text(new)  # as the kubelet rewrites a projected token

        admin.create(in_ns(finetunejob("after"), ns))
        wait_for(
            "kopf's finalizer after the rotation", lambda: _has_kopf_finalizer(admin, ns, "after")
        )
    finally:
        op.stop()
