"""The executor never adopts or overwrites what it does not own (real kube-apiserver 1.20).

A leftover ``<ftj>-train-config`` ConfigMap, a Service named like an InferenceDeployment, a child
of a deleted-and-recreated owner, and a field another manager owns are all left untouched and
reported as NotOurs naming the object; nothing else of the plan is written.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from envtest.test_operator import API, Cluster, finetunejob, in_ns
from model_garden.operator.executor import Executor, NotOurs
from model_garden.operator.plan import ObjectRef, Plan, child_meta

pytestmark = pytest.mark.envtest


@pytest.fixture(scope="module")
def cluster(kube_env: Any, crds_installed: list[str]) -> Cluster:
    return Cluster(kube_env.api_client)


def _owner(cluster: Cluster, ns: str, kind: str, name: str) -> dict[str, Any]:
    if kind == "FineTuneJob":
        body = in_ns(finetunejob(name), ns)
    else:
        body = in_ns(
            {
                "apiVersion": API,
                "kind": kind,
                "metadata": {"name": name},
                "spec": {"modelVersion": "chat-v1"},
            },
            ns,
        )
    cluster.create(body)
    owner = cluster.get(API, kind, ns, name)
    assert owner is not None
    return owner


def _config_map(owner: dict[str, Any], name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_meta(owner, name, {"test": "ours"}),
        "data": data,
    }


def _job(owner: dict[str, Any], name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": child_meta(owner, name, {}),
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "trainer", "image": "trainer"}],
                }
            }
        },
    }


def _theirs(kind: str, api_version: str, ns: str, name: str, **body: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": {"owner": "someone-else"}},
        **body,
    }


def _unchanged(before: dict[str, Any], after: dict[str, Any] | None) -> bool:
    assert after is not None
    return bool(
        after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        and not after["metadata"].get("ownerReferences")
    )


def test_a_leftover_train_config_is_not_adopted_and_no_job_is_created(cluster: Cluster) -> None:
    ns = cluster.namespace()
    leftover = _theirs(
        "ConfigMap", "v1", ns, "tune-train-config", data={"training-config.json": '{"live": 1}'}
    )
    cluster.create(leftover)
    before = cluster.get("v1", "ConfigMap", ns, "tune-train-config")
    assert before is not None
    owner = _owner(cluster, ns, "FineTuneJob", "tune")
    plan = Plan(
        create=[
            _config_map(owner, "tune-train-config", {"training-config.json": "{}"}),
            _job(owner, "tune-train"),
        ]
    )
    with pytest.raises(NotOurs) as info:
        cluster.x.execute_children(plan)
    assert info.value.ref == ObjectRef("v1", "ConfigMap", ns, "tune-train-config")
    assert info.value.reason == "Conflict"
    assert f"ConfigMap {ns}/tune-train-config already exists and is not ours" in str(info.value)
    assert "it has no controller" in info.value.message
    after = cluster.get("v1", "ConfigMap", ns, "tune-train-config")
    assert _unchanged(before, after)
    assert after is not None and after["data"] == {"training-config.json": '{"live": 1}'}
    assert cluster.get("batch/v1", "Job", ns, "tune-train") is None  # the plan stopped there
    assert plan.created == set()


def test_a_service_named_like_an_inference_deployment_is_left_alone(cluster: Cluster) -> None:
    ns = cluster.namespace()
    service = _theirs(
        "Service",
        "v1",
        ns,
        "bot",
        spec={"selector": {"app": "theirs"}, "ports": [{"name": "web", "port": 80}]},
    )
    cluster.create(service)
    before = cluster.get("v1", "Service", ns, "bot")
    assert before is not None
    owner = _owner(cluster, ns, "InferenceDeployment", "bot")
    ours_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_meta(owner, "bot", {"app": "ours"}),
        "spec": {"selector": {"app": "ours"}, "ports": [{"name": "http", "port": 8000}]},
    }
    plan = Plan(apply=[_config_map(owner, "bot-serving-config", {"k": "v"}), ours_service])
    with pytest.raises(NotOurs) as info:
        cluster.x.execute_children(plan)
    assert info.value.ref == ObjectRef("v1", "Service", ns, "bot")
    after = cluster.get("v1", "Service", ns, "bot")
    assert _unchanged(before, after)
    assert after is not None and after["spec"]["selector"] == {"app": "theirs"}
    # checked before any write: the ConfigMap listed first was not applied either
    assert cluster.get("v1", "ConfigMap", ns, "bot-serving-config") is None


def test_a_child_of_a_previous_owner_with_the_same_name_is_not_ours(cluster: Cluster) -> None:
    ns = cluster.namespace()
    first = _owner(cluster, ns, "FineTuneJob", "tune")
    cluster.x.execute_children(Plan(create=[_config_map(first, "tune-train-config", {"a": "1"})]))
    # the same name, another uid (deleted and recreated before the GC removed the child)
    second = copy.deepcopy(first)
    second["metadata"]["uid"] = "0b3c1f6e-0000-4000-8000-000000000000"
    with pytest.raises(NotOurs, match=r"controlled by FineTuneJob tune \(uid "):
        cluster.x.create(_config_map(second, "tune-train-config", {"a": "2"}))
    with pytest.raises(NotOurs):
        cluster.x.apply(_config_map(second, "tune-train-config", {"a": "2"}))
    cm = cluster.get("v1", "ConfigMap", ns, "tune-train-config")
    assert cm is not None and cm["data"] == {"a": "1"}


def test_ours_is_idempotent_and_a_field_of_another_manager_is_a_conflict(
    cluster: Cluster, kube_env: Any
) -> None:
    ns = cluster.namespace()
    owner = _owner(cluster, ns, "InferenceDeployment", "bot")
    desired = _config_map(owner, "bot-serving-config", {"k": "ours"})
    cluster.x.apply(desired)
    cluster.x.apply(desired)  # ours: applied again, nothing to report
    assert cluster.x.create(_config_map(owner, "bot-serving-config", {"k": "ours"})) is False
    # another field manager takes the field over (forced), as `kubectl apply --force-conflicts`
    other = Executor(kube_env.api_client, component="someone")
    other.call(
        "PATCH",
        f"/api/v1/namespaces/{ns}/configmaps/bot-serving-config",
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "bot-serving-config"},
            "data": {"k": "theirs"},
        },
        query=[("fieldManager", "someone"), ("force", "true")],
        content_type="application/apply-patch+yaml",
    )
    with pytest.raises(NotOurs, match="fields owned by another field manager") as info:
        cluster.x.apply(desired)  # without force: reported, not taken back
    assert "someone" in info.value.detail
    cm = cluster.get("v1", "ConfigMap", ns, "bot-serving-config")
    assert cm is not None and cm["data"] == {"k": "theirs"}
