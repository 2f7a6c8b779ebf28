"""Segments partition the model's users, describe themselves, and suggest unseen items."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from pymongo.database import Database

from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.segments import SegmentService, campaigns_csv, members_csv
from fastinsight.storage.mongo import insights as store_module
from tests.insights.conftest import insert_items, insert_rows, save_embeddings

GROUPS = {"outdoors": 0, "kitchen": 1, "books": 2}
PER_GROUP = 12


@pytest.fixture()
def world(db: Database[dict[str, Any]]) -> dict[str, Any]:
    """Three taste groups; group g's members all saw item <cat>-0 and nothing else of theirs."""
    rng = np.random.default_rng(1)
    items: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    users: list[str] = []
    item_vectors: list[np.ndarray] = []
    user_vectors: list[np.ndarray] = []
    now = datetime.now(UTC)
    for cat, g in GROUPS.items():
        for n in range(4):
            items.append({"_id": f"{cat}-{n}", "title": f"{cat} {n}", "categories": [cat], "hidden": False})
            vec = np.zeros(3)
            vec[g] = 2.0 if n == 0 else 1.0 - 0.1 * n
            item_vectors.append(vec)
        for m in range(PER_GROUP):
            uid = f"{cat}-fan-{m:02d}"
            users.append(uid)
            vec = np.full(3, 0.05) + rng.normal(0, 0.02, 3)
            vec[g] = 1.0
            user_vectors.append(vec)
            for k in range(1 + (g == 0) * 3):  # outdoors fans are four times as active
                rows.append({"user_id": uid, "item_id": f"{cat}-0", "type": "view",
                             "timestamp": now - timedelta(hours=k + 1)})
    insert_items(db, items)
    insert_rows(db, rows)
    save_embeddings(db, "v1", users, np.array(user_vectors), [i["_id"] for i in items],
                    np.array(item_vectors))
    insights = InsightsService(db, check_seconds=0.0)
    insights.refresh(wait=True)
    return {"svc": SegmentService(db, insights), "users": users}


def test_k_by_silhouette_partitions_every_user(world: dict[str, Any]) -> None:
    svc: SegmentService = world["svc"]
    out = svc.rebuild(None, wait=True)
    assert out is not None and out.k == 3 and out.chosen_by == "silhouette"
    assert out.silhouette is not None and out.silhouette > 0.5
    members: list[str] = []
    for seg in out.segments:
        page = svc.users(seg.segment_id, 0, 1000)
        assert page.total == seg.size == len(page.users) and page.next_offset is None
        members += [m.user_id for m in page.users]
        # each segment is exactly one taste group and says so in its label
        groups = {u.split("-fan-")[0] for u in (m.user_id for m in page.users)}
        assert len(groups) == 1
        group = groups.pop()
        assert seg.label.startswith(group.title())
        assert seg.top_categories[0].category == group and seg.top_items[0].item_id == f"{group}-0"
    assert sorted(members) == sorted(world["users"])  # a partition: everyone exactly once
    labels = {s.label for s in out.segments}
    assert "Outdoors fans, highly active" in labels


def test_given_k_and_paging(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MEMBERS_PER_CHUNK", 5)  # several chunks per segment
    svc: SegmentService = world["svc"]
    out = svc.rebuild(2, wait=True)
    assert out is not None and out.k == 2 and out.chosen_by == "given" and out.silhouette is None
    seg = out.segments[0]
    collected: list[Any] = []
    offset: int | None = 0
    while offset is not None:
        page = svc.users(seg.segment_id, offset, 7)
        collected += page.users
        offset = page.next_offset
    assert len(collected) == seg.size == len({m.user_id for m in collected})
    sims = [m.similarity for m in collected]
    assert sims == sorted(sims, reverse=True)
    rows = list(csv.DictReader(io.StringIO(members_csv(svc.users(seg.segment_id, 0, 1000)))))
    assert [(r["user_id"], float(r["similarity"])) for r in rows] == [
        (m.user_id, m.similarity) for m in collected]


def test_campaigns_suggest_unseen_items_of_the_segments_taste(world: dict[str, Any]) -> None:
    svc: SegmentService = world["svc"]
    svc.rebuild(3, wait=True)
    out = svc.campaigns(3)
    by_segment: dict[str, list[Any]] = {}
    for row in out.rows:
        by_segment.setdefault(row.segment_label, []).append(row)
    assert len(by_segment) == 3
    for label, rows in by_segment.items():
        group = label.split(" fans")[0].lower()
        # <group>-0 has the strongest vector but every member saw it: it scores 0
        assert [r.item_id for r in rows] == [f"{group}-1", f"{group}-2", f"{group}-3"]
        assert all(r.audience == PER_GROUP for r in rows)
        assert [r.score for r in rows] == pytest.approx([0.9, 0.8, 0.7], abs=1e-4)
    parsed = list(csv.DictReader(io.StringIO(campaigns_csv(out))))
    assert [(r["segment_id"], r["item_id"], int(r["rank"])) for r in parsed] == [
        (r.segment_id, r.item_id, r.rank) for r in out.rows]


def test_forgetting_a_model_version_drops_its_segments(
    db: Database[dict[str, Any]], world: dict[str, Any]
) -> None:
    svc: SegmentService = world["svc"]
    svc.rebuild(3, wait=True)
    assert db["segments"].count_documents({}) > 1 and db["insight_snapshots"].find_one({"_id": "coverage:v1"})
    store_module.forget_model_version(db, "v1")
    assert db["segments"].count_documents({}) == 0
    assert db["insight_snapshots"].find_one({"_id": "coverage:v1"}) is None
