"""Audiences rank by predicted affinity and leave out people who already interacted."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from pymongo.database import Database

from fastinsight.errors import NotFoundError
from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.audience import AudienceService, audience_csv
from tests.insights.conftest import insert_items, insert_rows, save_embeddings

USERS = [f"u{n}" for n in range(6)]
# affinity with item "a" (vector [1, 0]) is 5, 4, 3, 2, 1, 0 for u0..u5
USER_VECTORS = np.array([[5, 0], [4, 0], [3, 0], [2, 0], [1, 0], [0, 1]], dtype=np.float32)
ITEMS = ["a", "b", "c"]
ITEM_VECTORS = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)


@pytest.fixture()
def svc(db: Database[dict[str, Any]]) -> AudienceService:
    insert_items(db, [{"_id": "a", "title": "A", "categories": ["tools"], "hidden": False},
                      {"_id": "b", "title": "B", "categories": ["toys"], "hidden": False},
                      {"_id": "c", "title": "C", "categories": ["tools"], "hidden": False}])
    now = datetime.now(UTC)
    insert_rows(db, [
        {"user_id": "u0", "item_id": "a", "type": "view", "timestamp": now - timedelta(days=1)},
        {"user_id": "u2", "item_id": "a", "type": "purchase", "timestamp": now - timedelta(days=3)},
        {"user_id": "u4", "item_id": "b", "type": "view", "timestamp": now - timedelta(days=3)},
        {"user_id": "u5", "item_id": "c", "type": "view", "timestamp": now - timedelta(days=3)},
    ])
    save_embeddings(db, "v1", USERS, USER_VECTORS, ITEMS, ITEM_VECTORS)
    insights = InsightsService(db, check_seconds=0.0)
    insights.refresh(wait=True)
    return AudienceService(db, insights)


def test_item_audience_ranks_by_affinity_and_excludes_who_interacted(svc: AudienceService) -> None:
    out = svc.for_item("a", k=10)
    assert [m.user_id for m in out.users] == ["u1", "u3", "u4", "u5"]
    assert [m.score for m in out.users] == [4.0, 2.0, 1.0, 0.0]
    assert [m.rank for m in out.users] == [1, 2, 3, 4]
    assert out.excluded == 2 and out.model_version == "v1" and out.excluded_as_of is not None
    everyone = svc.for_item("a", k=10, exclude_seen=False)
    assert [m.user_id for m in everyone.users] == ["u0", "u1", "u2", "u3", "u4", "u5"]
    assert [m.user_id for m in svc.for_item("a", k=2).users] == ["u1", "u3"]


def test_real_time_events_after_the_snapshot_are_excluded_too(
    db: Database[dict[str, Any]], svc: AudienceService
) -> None:
    insert_rows(db, [{"user_id": "u1", "item_id": "a", "type": "click",
                      "timestamp": datetime.now(UTC)}], fresh=True)
    assert [m.user_id for m in svc.for_item("a", k=10).users] == ["u3", "u4", "u5"]


def test_category_audience_uses_the_mean_item_vector(svc: AudienceService) -> None:
    # tools = mean(a, c) = [1, .5]: u0 5, u1 4, u2 3, u3 2, u4 1, u5 .5; u0, u2 (a) and u5 (c) saw it
    out = svc.for_category("tools", k=10)
    assert [m.user_id for m in out.users] == ["u1", "u3", "u4"]
    assert out.users[0].score == pytest.approx(4.0)
    assert out.kind == "category" and out.excluded == 3
    with pytest.raises(NotFoundError):
        svc.for_category("nothing-here", k=3)


def test_unknown_item_is_not_found(svc: AudienceService) -> None:
    with pytest.raises(NotFoundError):
        svc.for_item("zzz", k=3)


def test_csv_parses_back_to_the_same_rows(svc: AudienceService) -> None:
    out = svc.for_item("a", k=10)
    rows = list(csv.DictReader(io.StringIO(audience_csv(out))))
    assert [(int(r["rank"]), r["user_id"], float(r["score"])) for r in rows] == [
        (m.rank, m.user_id, m.score) for m in out.users]
