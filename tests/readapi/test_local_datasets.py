"""Dataset routes: uploads checked by the trainer's validator before anything is stored."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from model_garden.local.store import LocalStore

from .conftest import WRITE

V1 = "/api/v1"
GOOD = "".join(
    json.dumps({"instruction": f"Name pet {i}", "output": f"Pet number {i} is a cat."}) + "\n"
    for i in range(5)
)
BAD = (
    json.dumps({"instruction": "ok", "output": "fine"})
    + "\n"
    + "{not json\n"
    + json.dumps({"instruction": "ok", "output": "fine"})
    + "\n"
    + json.dumps({"instruction": "no output here"})
    + "\n"
)


def folder(store: LocalStore):  # type: ignore[no-untyped-def]
    return store.claim_dir("model-garden-artifacts") / "default" / "datasets"


def test_a_malformed_upload_is_refused_with_its_lines_and_nothing_stored(
    client: TestClient, store: LocalStore
) -> None:
    reply = client.post(
        f"{V1}/datasets/default", files={"file": ("pets.jsonl", BAD.encode())}, headers=WRITE
    )
    assert reply.status_code == 422, reply.text
    detail = reply.json()["detail"]
    assert "2 invalid rows" in detail["message"] and "nothing was stored" in detail["message"]
    assert [e["line"] for e in detail["errors"]] == [2, 4]
    assert detail["errors"][1]["field"] == "output"
    assert list(folder(store).iterdir()) == []  # not even the temp file
    assert client.get(f"{V1}/datasets").json() == {"items": []}


def test_a_good_upload_is_stored_listed_previewed_and_counted(
    client: TestClient, store: LocalStore
) -> None:
    reply = client.post(
        f"{V1}/datasets/default", files={"file": ("pets.jsonl", GOOD.encode())}, headers=WRITE
    )
    assert reply.status_code == 201, reply.text
    assert reply.json() == {
        "namespace": "default",
        "name": "pets.jsonl",
        "format": "alpaca",
        "rows": 5,
    }
    assert (folder(store) / "pets.jsonl").read_text() == GOOD
    assert [p.name for p in folder(store).iterdir()] == ["pets.jsonl"]

    items = client.get(f"{V1}/datasets?namespace=default").json()["items"]
    assert [(i["name"], i["rows"], i["format"], i["bytes"]) for i in items] == [
        ("pets.jsonl", 5, "alpaca", len(GOOD.encode()))
    ]
    preview = client.get(f"{V1}/datasets/default/pets.jsonl/preview?limit=2").json()
    assert preview["format"] == "alpaca" and preview["total"] == 5 and len(preview["rows"]) == 2
    assert preview["rows"][0]["line"] == 1
    stats = client.get(f"{V1}/datasets/default/pets.jsonl/stats").json()
    assert stats["rows"] == 5 and stats["tokens"] is None
    assert (
        stats["characters"]["total"] > 0
        and stats["characters"]["max"] >= stats["characters"]["mean"]
    )
    assert client.get(f"{V1}/datasets/default/other.jsonl/preview").status_code == 404
    assert client.get(f"{V1}/datasets/default/..%2Fsecret.jsonl/stats").status_code == 404


def test_upload_needs_the_token_and_a_plain_file_name(
    client: TestClient, store: LocalStore
) -> None:
    files = {"file": ("pets.jsonl", GOOD.encode())}
    assert client.post(f"{V1}/datasets/default", files=files).status_code == 401
    odd = client.post(
        f"{V1}/datasets/default", files={"file": ("../x.jsonl", b"{}")}, headers=WRITE
    )
    assert odd.status_code == 422
    elsewhere = client.post(f"{V1}/datasets/other", files=files, headers=WRITE)
    assert elsewhere.status_code == 404
    assert not folder(store).exists() or list(folder(store).iterdir()) == []
