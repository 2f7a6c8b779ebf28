"""User and item ids name their record in URL paths, so '/' is refused wherever one is taken.

Starlette decodes ``%2F`` before routing: ``GET /v1/users/a%2Fb`` reaches no route, so a
user ``a/b`` could be created but never read, changed or erased again. Other punctuation
is fine when the client percent-encodes it in the path.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.training.pipeline import train
from tests.api.test_recommend import seed
from tests.conftest import API_KEY
from tests.live import free_port

Db = Database[dict[str, object]]
REASON = "must not contain '/': ids are used in URL paths"


def _refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert {"field": field, "message": REASON} in body["details"], body
    assert REASON in body["message"]


def _item(client: TestClient, item_id: str = "i1") -> None:
    assert client.post("/v1/items", json={"item_id": item_id}).status_code == 201


def test_create_and_upsert_refuse_a_slash(client: TestClient, db: Db) -> None:
    _refused(client.post("/v1/users", json={"user_id": "a/b"}), "user_id")
    _refused(client.post("/v1/items", json={"item_id": "it-a/b", "title": "x"}), "item_id")
    _refused(client.post("/v1/users", json={"user_id": "/"}), "user_id")
    assert db["users"].count_documents({}) == 0 and db["items"].count_documents({}) == 0


def test_single_batch_and_beacon_interactions_refuse_a_slash(client: TestClient, db: Db) -> None:
    _item(client)
    _refused(client.post("/v1/interactions", json={"user_id": "a/b", "item_id": "i1", "type": "view"}),
             "user_id")
    _refused(client.post("/v1/interactions", json={"user_id": "u1", "item_id": "i/1", "type": "view"}),
             "item_id")
    rows = [{"user_id": "a/b", "item_id": "i1", "type": "view"},
            {"user_id": "u1", "item_id": "i1", "type": "view"},
            {"user_id": "u2", "item_id": "x/y", "type": "view"}]
    report = client.post("/v1/interactions/batch", json={"interactions": rows})
    assert report.status_code == 200, report.text
    assert report.json()["inserted"] == 1
    assert [(r["row"], r["errors"]) for r in report.json()["rejected"]] == [
        (1, [{"field": "user_id", "message": REASON}]),
        (3, [{"field": "item_id", "message": REASON}])]
    beacon = client.post("/v1/beacon", content=json.dumps({"key": API_KEY, "interactions": rows}),
                         headers={"Content-Type": "text/plain", "X-API-Key": ""})
    assert beacon.status_code == 200, beacon.text
    assert [r["row"] for r in beacon.json()["rejected"]] == [1, 3]
    assert db["users"].distinct("_id") == ["u1"]  # no bare user "a/b" was made
    assert db["items"].distinct("_id") == ["i1"]  # nor an item "x/y"


def test_csv_imports_reject_the_row_and_keep_the_others(client: TestClient, db: Db) -> None:
    csv = {"Content-Type": "text/csv"}
    users = client.post("/v1/users/import", content="user_id\nok1\na/b\nok2\n", headers=csv)
    assert users.json()["inserted"] == 2, users.text
    assert users.json()["rejected"] == [{"row": 2, "errors": [{"field": "user_id", "message": REASON}]}]
    items = client.post("/v1/items/import", content="item_id,title\ni1,One\nit-a/b,Two\n", headers=csv)
    assert items.json()["inserted"] == 1 and items.json()["rejected"][0]["row"] == 2, items.text
    events = client.post("/v1/interactions/import", headers=csv, content=(
        "user_id,item_id,type\nok1,i1,view\nok1,i/1,view\nx/y,i1,view\nok2,i1,view\n"))
    report = events.json()
    assert report["inserted"] == 2, events.text
    assert [(r["row"], r["errors"][0]["field"]) for r in report["rejected"]] == [
        (2, "item_id"), (3, "user_id")]
    assert sorted(db["users"].distinct("_id")) == ["ok1", "ok2"]
    assert db["items"].distinct("_id") == ["i1"]


def test_session_and_exclude_lists_refuse_a_slash(client: TestClient) -> None:
    _refused(client.post("/v1/recommendations/session", json={"items": ["i1", "a/b"]}), "items.1")
    _refused(client.post("/v1/recommendations/session", json={"items": ["i1"], "exclude": ["a/b"]}),
             "exclude.0")
    _refused(client.post("/v1/recommendations/session", json={"items": ["i1"], "user_id": "a/b"}),
             "user_id")
    _refused(client.get("/v1/users/u1/recommendations", params={"exclude": ["i1", "a/b"]}),
             "query.exclude.1")


def test_the_json_schema_of_an_id_excludes_a_slash(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for model, field in (("UserIn", "user_id"), ("ItemIn", "item_id"), ("InteractionIn", "user_id"),
                         ("InteractionIn", "item_id")):
        pattern = schemas[model]["properties"][field]["pattern"]
        assert "/" in pattern and pattern.startswith("^[^"), (model, pattern)


@pytest.fixture()
def served(settings: Settings, db: Db) -> Iterator[httpx.Client]:
    """The app behind a real uvicorn server: Starlette's ``TestClient`` decodes a path twice
    (``a%252Fb`` reaches the app as ``a/b``), a real server once, as clients expect."""
    seed(db, settings)  # a trained model, so recommendations answer
    train(db, settings, "itemknn", evaluate=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": API_KEY},
                          timeout=30) as http:
            yield http
    finally:
        server.should_exit = True
        thread.join(timeout=30)


ODD_IDS = ["a%2Fb", "a.b", "a b", "ü", "a?b#c", "a\\b", "a+b", "a;b=c"]


def test_other_punctuation_works_end_to_end(served: httpx.Client) -> None:
    for odd in ODD_IDS:
        path = quote(odd, safe="")
        user = served.post("/v1/users", json={"user_id": odd})
        item = served.post("/v1/items", json={"item_id": odd})
        assert (user.status_code, item.status_code) == (201, 201), (odd, user.text, item.text)
        r = served.post("/v1/interactions", json={"user_id": odd, "item_id": odd, "type": "view"})
        assert r.status_code == 201, (odd, r.text)

        got = served.get(f"/v1/users/{path}")
        assert got.status_code == 200 and got.json()["user_id"] == odd, (odd, got.text)
        got = served.get(f"/v1/items/{path}")
        assert got.status_code == 200 and got.json()["item_id"] == odd, (odd, got.text)
        patched = served.patch(f"/v1/items/{path}", json={"title": "renamed"})
        assert patched.status_code == 200 and patched.json()["title"] == "renamed", (odd, patched.text)
        assert served.patch(f"/v1/users/{path}", json={"attributes": {"k": 1}}).status_code == 200, odd
        events = served.get(f"/v1/users/{path}/interactions")
        assert events.status_code == 200, (odd, events.text)
        assert [e["item_id"] for e in events.json()] == [odd]
        recs = served.get(f"/v1/users/{path}/recommendations")
        assert recs.status_code == 200 and recs.json()["user_id"] == odd, (odd, recs.text)
        similar = served.get(f"/v1/items/{path}/similar")
        assert similar.status_code == 200 and similar.json()["item_id"] == odd, (odd, similar.text)
        # itemknn has no embeddings: the route's own 404, not the router's "Not Found".
        audience = served.get(f"/v1/items/{path}/audience")
        assert "has no embeddings" in audience.json()["message"], (odd, audience.text)

        erased = served.delete(f"/v1/users/{path}")
        assert erased.status_code == 200 and erased.json()["interactions_deleted"] == 1, (odd, erased.text)
        assert served.delete(f"/v1/items/{path}").json()["deleted"] is True, odd
        assert served.get(f"/v1/users/{path}").status_code == 404, odd
        assert served.get(f"/v1/items/{path}").status_code == 404, odd


def test_ids_stored_with_a_slash_before_stay_listed(client: TestClient, db: Db) -> None:
    client.post("/v1/users", json={"user_id": "plain"})
    client.post("/v1/items", json={"item_id": "plain"})
    for name in ("users", "items"):
        doc = dict(db[name].find_one({"_id": "plain"}) or {})
        key = "user_id" if name == "users" else "item_id"
        db[name].insert_one({**doc, "_id": "old/one", key: "old/one"})
    assert [u["user_id"] for u in client.get("/v1/users").json()["items"]] == ["old/one", "plain"]
    assert [i["item_id"] for i in client.get("/v1/items").json()["items"]] == ["old/one", "plain"]
