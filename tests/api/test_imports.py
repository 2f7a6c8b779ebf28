"""Import formats, partial acceptance with row numbers, idempotent re-imports."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from pymongo.database import Database

JSONL = "application/x-ndjson"


def _items(client: TestClient, n: int = 3) -> None:
    rows = [{"item_id": f"i{k}", "title": f"Item {k}", "categories": ["c"]} for k in range(n)]
    r = client.post("/v1/items/import", content=json.dumps(rows),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["inserted"] == n


def test_items_csv_with_lists_and_attributes(client: TestClient) -> None:
    csv_body = ("item_id,title,categories,tags,hidden,attr.colour\n"
                "a,Alpha,books|poetry,old|rare,false,red\n"
                "b,Beta,music,,true,\n")
    r = client.post("/v1/items/import", content=csv_body, headers={"Content-Type": "text/csv"})
    assert r.json()["inserted"] == 2, r.text
    a = client.get("/v1/items/a").json()
    assert a["categories"] == ["books", "poetry"] and a["tags"] == ["old", "rare"]
    assert a["attributes"] == {"colour": "red"} and a["hidden"] is False
    assert client.get("/v1/items/b").json()["hidden"] is True


def test_users_jsonl(client: TestClient) -> None:
    body = "\n".join(json.dumps({"user_id": f"u{k}"}) for k in range(5))
    r = client.post("/v1/users/import", content=body, headers={"Content-Type": JSONL})
    assert r.json()["inserted"] == 5


def test_mixed_good_and_bad_rows(client: TestClient, db: Database[dict[str, object]]) -> None:
    _items(client)
    rows = [
        {"user_id": "u1", "item_id": "i0", "type": "view", "timestamp": "2026-01-01T00:00:00Z"},
        {"user_id": "u1", "item_id": "i1", "type": "teleport"},
        {"user_id": "u2", "item_id": "i2", "type": "rating", "value": 4, "timestamp": 1767225600},
        {"user_id": "u3", "item_id": "missing", "type": "view"},
        "not an object",
        {"user_id": "u4", "item_id": "i2", "type": "rating"},
        {"user_id": "u5", "item_id": "i1", "type": "click", "timestamp": "yesterday"},
    ]
    r = client.post("/v1/interactions/import", content=json.dumps(rows),
                    headers={"Content-Type": "application/json"})
    report = r.json()
    assert report["inserted"] == 2
    rejected = {row["row"]: row["errors"] for row in report["rejected"]}
    assert sorted(rejected) == [2, 4, 5, 6, 7]
    assert rejected[2][0]["field"] == "type" and "teleport" in rejected[2][0]["message"]
    assert rejected[4][0]["field"] == "item_id"
    assert rejected[6][0]["field"] == "value"
    assert rejected[7][0]["field"] == "timestamp"
    assert db["interactions"].count_documents({}) == 2
    assert report["users_created"] == 2
    assert report["rejected_count"] == 5


def test_rejections_are_bounded(client: TestClient, db: Database[dict[str, object]]) -> None:
    """A file of bad rows answers with the first 1,000 by row number and the full count;
    every good row among them is still stored."""
    _items(client)
    lines = [f"u{k},i0,{'view' if k % 7 == 0 else 'teleport'},,2026-01-01T00:00:00Z"
             for k in range(1, 3001)]
    body = "user_id,item_id,type,value,timestamp\n" + "\n".join(lines) + "\n"
    report = client.post("/v1/interactions/import", content=body,
                         headers={"Content-Type": "text/csv"}).json()
    good = sum(1 for k in range(1, 3001) if k % 7 == 0)
    assert report["inserted"] == good == db["interactions"].count_documents({})
    assert report["rejected_count"] == 3000 - good
    rows = [r["row"] for r in report["rejected"]]
    assert len(rows) == 1000
    assert rows == sorted(k for k in range(1, 3001) if k % 7)[:1000]


def test_reimport_creates_no_duplicates(client: TestClient, db: Database[dict[str, object]]) -> None:
    _items(client)
    csv_body = "user_id,item_id,type,value,timestamp\n" + "".join(
        f"u{k % 4},i{k % 3},view,,2026-02-0{1 + k % 9}T10:00:00Z\n" for k in range(30))
    first = client.post("/v1/interactions/import", content=csv_body,
                        headers={"Content-Type": "text/csv"}).json()
    second = client.post("/v1/interactions/import", content=csv_body,
                         headers={"Content-Type": "text/csv"}).json()
    stored = db["interactions"].count_documents({})
    assert first["inserted"] == stored
    assert first["inserted"] + first["duplicates"] == 30
    assert second["inserted"] == 0 and second["duplicates"] == 30
    again = client.post("/v1/items/import", content=json.dumps(
        [{"item_id": "i0", "title": "Item 0", "categories": ["c"]},
         {"item_id": "i1", "title": "Renamed", "categories": ["c"]}]),
        headers={"Content-Type": "application/json"}).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 1, 1)
    assert db["items"].count_documents({}) == 3


def test_reimport_without_timestamps_or_event_ids(
    client: TestClient, db: Database[dict[str, object]]
) -> None:
    """Untimed rows are keyed by content and row number: the same file twice stores each
    row once, and two identical rows of one file are two events."""
    _items(client)
    csv_body = "user_id,item_id,type,value\n" + "".join(
        f"u{k % 2},i{k % 3},{'rating' if k % 4 == 0 else 'view'},{k % 5 if k % 4 == 0 else ''}\n"
        for k in range(12)) + "u0,i0,view,\n" * 2
    first = client.post("/v1/interactions/import", content=csv_body,
                        headers={"Content-Type": "text/csv"}).json()
    assert (first["inserted"], first["duplicates"], first["rejected"]) == (14, 0, [])
    second = client.post("/v1/interactions/import", content=csv_body,
                         headers={"Content-Type": "text/csv"}).json()
    assert (second["inserted"], second["duplicates"]) == (0, 14)
    assert db["interactions"].count_documents({}) == 14
    # A live event without a time is a new event each time it arrives.
    live = {"user_id": "u0", "item_id": "i0", "type": "view"}
    assert client.post("/v1/interactions", json=live).json()["inserted"] == 1
    assert client.post("/v1/interactions", json=live).json()["inserted"] == 1
    assert db["interactions"].count_documents({}) == 16


def test_event_id_makes_retries_idempotent(client: TestClient) -> None:
    _items(client)
    event = {"user_id": "u", "item_id": "i0", "type": "purchase", "event_id": "order-17"}
    assert client.post("/v1/interactions", json=event).json()["inserted"] == 1
    assert client.post("/v1/interactions", json=event).json()["duplicates"] == 1
    assert len(client.get("/v1/users/u/interactions").json()) == 1


def test_batch_endpoint_keeps_valid_rows(client: TestClient) -> None:
    _items(client)
    r = client.post("/v1/interactions/batch", json={"interactions": [
        {"user_id": "u", "item_id": "i0", "type": "view"},
        {"user_id": "u", "item_id": "i1"},
    ]})
    body = r.json()
    assert body["inserted"] == 1
    assert body["rejected"] == [{"row": 2, "errors": [{"field": "type", "message": "Field required"}]}]


def test_broken_json_array_reports_position(client: TestClient) -> None:
    r = client.post("/v1/users/import", content=b'[{"user_id": "a"}, {"user_id": ',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "row 1" in r.json()["message"]


def test_a_body_that_stops_being_readable_says_what_was_stored(
    client: TestClient, db: Database[dict[str, object]], settings: object
) -> None:
    """A Latin-1 byte late in a CSV stops the import with 422: the batches before it are
    kept, the answer says so, and sending the corrected file again stores the rest only."""
    size = client.app.state.deployment.settings.import_batch_size  # type: ignore[attr-defined]
    pad = "x" * 200  # the reader decodes 8 KiB at a time: the bad byte lies beyond the batch
    rows = [f"it-{n},Item {n} {pad}" for n in range(size + 100)]
    bad = rows.copy()
    bad[size + 60] = "it-bad,Caf\xe9"
    body = ("item_id,title\n" + "\n".join(bad) + "\n").encode("latin-1")
    r = client.post("/v1/items/import", content=body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 422, r.text
    assert "not UTF-8" in r.json()["message"]
    assert f"{size} rows before it were stored" in r.json()["message"]
    assert r.json()["details"][-1]["field"] == "(import)"
    assert db["items"].count_documents({}) == size
    fixed = ("item_id,title\n" + "\n".join(rows) + "\n").encode()
    again = client.post("/v1/items/import", content=fixed, headers={"Content-Type": "text/csv"})
    assert again.status_code == 200
    assert again.json()["inserted"] == 100 and again.json()["unchanged"] == size
