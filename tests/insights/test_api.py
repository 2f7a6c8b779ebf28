"""The insight, audience, segment and dashboard routes through the app."""

from __future__ import annotations

import csv
import io
import time
from typing import Any
from urllib.parse import quote

import numpy as np
from fastapi.testclient import TestClient
from pymongo.database import Database

from tests.insights.conftest import Dataset, insert_items, save_embeddings

INSIGHTS = ["overview", "activity?granularity=week&days=60", "top-items?days=14&type=purchase",
            "top-categories", "funnel?steps=view,click,purchase", "funnel/categories", "catalogue",
            "models"]


def test_insights_need_a_refresh_then_answer_with_computed_at(
    client: TestClient, admin_headers: dict[str, str], dataset: Dataset
) -> None:
    missing = client.get("/v1/insights/overview")
    assert missing.status_code == 404
    assert "POST /v1/admin/insights/refresh" in missing.json()["message"]
    assert client.post("/v1/admin/insights/refresh").status_code == 403
    done = client.post("/v1/admin/insights/refresh?wait=true", headers=admin_headers)
    assert done.status_code == 200 and done.json()["interactions"] == len(dataset.rows)
    for path in INSIGHTS:
        res = client.get(f"/v1/insights/{path}")
        assert res.status_code == 200, (path, res.text)
        if path != "models":
            assert res.json()["snapshot_id"] == done.json()["snapshot_id"]
            assert res.json()["computed_at"][:19] == done.json()["computed_at"][:19]
    funnel = client.get("/v1/insights/funnel?steps=view,click,purchase").json()
    assert [s["type"] for s in funnel["steps"]] == ["view", "click", "purchase"]
    assert client.get("/v1/insights/top-items?days=0").status_code == 422
    assert client.get("/v1/insights/activity?granularity=month").status_code == 422
    assert client.get("/v1/insights/funnel?category=nope").status_code == 422
    assert client.get("/v1/insights/overview", headers={"X-API-Key": ""}).status_code == 401


def test_background_refresh_reports_status(
    client: TestClient, admin_headers: dict[str, str], dataset: Dataset
) -> None:
    started = client.post("/v1/admin/insights/refresh", headers=admin_headers)
    assert started.status_code == 202 and started.json()["status"] == "started"
    for _ in range(100):
        status = client.get("/v1/admin/insights/status", headers=admin_headers).json()
        if not status["running"]:
            break
        time.sleep(0.1)
    assert status["last_error"] is None and status["current"]["snapshot_id"]
    assert client.get("/v1/insights/overview").json()["interactions"] == len(dataset.rows)


def test_audience_and_segments_routes_with_csv(
    client: TestClient, admin_headers: dict[str, str], db: Database[dict[str, Any]], dataset: Dataset
) -> None:
    users = sorted({r["user_id"] for r in dataset.rows})
    items = [i["_id"] for i in dataset.items]
    rng = np.random.default_rng(0)
    save_embeddings(db, "v1", users, rng.normal(size=(len(users), 4)), items,
                    rng.normal(size=(len(items), 4)))
    res = client.get("/v1/items/i01/audience?k=5")
    assert res.status_code == 200, res.text
    body = res.json()
    seen = {r["user_id"] for r in dataset.rows if r["item_id"] == "i01"}
    assert not seen & {u["user_id"] for u in body["users"]}
    assert body["excluded"] == len(seen)
    exported = client.get("/v1/items/i01/audience?k=5&format=csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert [r["user_id"] for r in csv.DictReader(io.StringIO(exported.text))] == [
        u["user_id"] for u in body["users"]]
    assert client.get("/v1/categories/books/audience?k=3").status_code == 200
    assert client.get("/v1/items/nope/audience").status_code == 404

    assert client.get("/v1/segments").status_code == 404
    assert client.post("/v1/admin/segments/rebuild?k=3").status_code == 403
    built = client.post("/v1/admin/segments/rebuild?k=3", headers=admin_headers)
    assert built.status_code == 200, built.text
    listed = client.get("/v1/segments").json()
    assert listed["k"] == 3 and sum(s["size"] for s in listed["segments"]) == len(users)
    seg = listed["segments"][0]["segment_id"]
    page = client.get(f"/v1/segments/{seg}/users?limit=2").json()
    assert len(page["users"]) == min(2, listed["segments"][0]["size"])
    members = client.get(f"/v1/segments/{seg}/users?limit=1000&format=csv")
    assert len(list(csv.DictReader(io.StringIO(members.text)))) == listed["segments"][0]["size"]
    campaigns = client.get("/v1/segments/campaigns?per_segment=2").json()
    exported = client.get("/v1/segments/campaigns?per_segment=2&format=csv").text
    assert [(r["segment_id"], r["item_id"]) for r in csv.DictReader(io.StringIO(exported))] == [
        (r["segment_id"], r["item_id"]) for r in campaigns["rows"]]
    assert client.get("/v1/segments/s99/users").status_code == 404


def test_dashboard_is_served_without_a_key(settings: Any, db: Database[dict[str, Any]]) -> None:
    from fastinsight.api.app import create_app

    with TestClient(create_app(settings)) as anonymous:
        page = anonymous.get("/dashboard")
        assert page.status_code == 200 and "FastInsight" in page.text
        assert anonymous.get("/dashboard/static/js/main.js").status_code == 200
        chart = anonymous.get("/dashboard/vendor/chart.js")
        assert chart.status_code == 200 and "Chart" in chart.text[:2000]
        assert anonymous.get("/v1/insights/overview").status_code == 401


def test_csv_export_of_an_id_outside_latin_1(
    client: TestClient, db: Database[dict[str, Any]], dataset: Dataset
) -> None:
    """Found by the schema fuzz: the file name in Content-Disposition answered 500."""
    odd = "0\u00c4\U00091cd4x\u0103"
    insert_items(db, [{"_id": odd, "item_id": odd, "title": "", "description": "", "tags": [],
                       "categories": ["books"], "attributes": {}, "hidden": False}])
    users = sorted({r["user_id"] for r in dataset.rows})
    items = [i["_id"] for i in dataset.items] + [odd]
    rng = np.random.default_rng(0)
    save_embeddings(db, "v1", users, rng.normal(size=(len(users), 4)), items,
                    rng.normal(size=(len(items), 4)))
    exported = client.get(f"/v1/items/{quote(odd, safe='')}/audience?k=3&format=csv")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-disposition"] == 'attachment; filename="audience-0__x_.csv"'
