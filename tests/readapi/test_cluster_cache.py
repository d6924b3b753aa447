"""The cluster cache's bookkeeping without a server: a re-list (after a 410) publishes only
what changed while the watch was away."""

from __future__ import annotations

from typing import Any

from model_garden.readapi.cluster import ClusterSource
from model_garden.readapi.source import Change


def obj(ns: str, name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "resourceVersion": rv}}


def test_a_relist_publishes_the_differences_and_watch_events_apply() -> None:
    source = ClusterSource(api_client=None)
    seen: list[Change] = []
    source.changes.publish = seen.append  # type: ignore[method-assign]
    source._replace("FineTuneJob", [obj("a", "x", "1"), obj("a", "y", "2")])
    assert sorted((c.name, c.type) for c in seen) == [("x", "ADDED"), ("y", "ADDED")]
    seen.clear()
    generation = source.generation
    source._replace("FineTuneJob", [obj("a", "x", "1"), obj("b", "z", "5"), obj("a", "y", "7")])
    source._replace("FineTuneJob", [obj("b", "z", "5"), obj("a", "y", "7")])
    assert sorted((c.namespace, c.name, c.type, c.resource_version) for c in seen) == [
        ("a", "x", "DELETED", "1"),
        ("a", "y", "MODIFIED", "7"),
        ("b", "z", "ADDED", "5"),
    ]
    assert source.generation > generation
    seen.clear()
    source._apply("FineTuneJob", "DELETED", obj("b", "z", "9"))
    source._apply("FineTuneJob", "MODIFIED", obj("a", "y", "10"))
    assert [(c.name, c.type) for c in seen] == [("z", "DELETED"), ("y", "MODIFIED")]
    with source._lock:
        assert list(source._cache["FineTuneJob"]) == [("a", "y")]
        assert source._cache["FineTuneJob"][("a", "y")]["metadata"]["resourceVersion"] == "10"
