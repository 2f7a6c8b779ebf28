"""Model health: versions with their metrics, and recommendation coverage per version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from pymongo.database import Database

from fastinsight.services.insights.analytics import InsightsService
from tests.insights.conftest import insert_items, insert_rows, save_embeddings

ITEMS = [f"i{n:02d}" for n in range(12)]


@pytest.fixture()
def svc(db: Database[dict[str, Any]]) -> InsightsService:
    insert_items(db, [{"_id": i, "title": i, "categories": ["c"], "hidden": False} for i in ITEMS]
                 + [{"_id": "h", "title": "hidden", "categories": ["c"], "hidden": True}])
    now = datetime.now(UTC)
    insert_rows(db, [{"user_id": "u0", "item_id": "i11", "type": "view", "timestamp": now},
                     {"user_id": "u9", "item_id": "i00", "type": "view", "timestamp": now}])
    ids = [*ITEMS, "h"]
    vectors = np.array([[12 - n] for n in range(12)] + [[100]], dtype=np.float32)  # h would win
    save_embeddings(db, "old", ["u0"], np.array([[-1.0]]), ids, vectors, activate=False,
                    created_at=now - timedelta(days=1), metrics={"ndcg@10": 0.1})
    save_embeddings(db, "new", ["u0"], np.array([[1.0]]), ids, vectors,
                    metrics={"ndcg@10": 0.2, "recall@10": 0.3})
    return InsightsService(db, check_seconds=0.0)


def test_coverage_excludes_seen_and_hidden_items(svc: InsightsService) -> None:
    svc.refresh(wait=True)
    out = svc.model_health()
    assert out.active_version == "new"
    assert [v.version for v in out.versions] == ["new", "old"]
    new, old = out.versions
    assert new.active and not old.active
    assert new.metrics == {"ndcg@10": 0.2, "recall@10": 0.3} and old.metrics == {"ndcg@10": 0.1}
    assert new.coverage is not None and old.coverage is not None
    # u0's top 10 of the 11 visible items it has not seen: i00..i09, out of 12 visible items
    assert new.coverage.k == 10 and new.coverage.users_sampled == 1
    assert new.coverage.items_recommended == 10
    assert new.coverage.catalogue_coverage == pytest.approx(10 / 12, abs=1e-4)
    assert new.coverage.user_coverage == pytest.approx(0.5)  # u9 has events but no vector
    # the older version's vectors point the other way: i10, i09, ... i01
    assert old.coverage.items_recommended == 10


def test_older_versions_get_coverage_once(svc: InsightsService) -> None:
    svc.refresh(wait=True)
    first = {v.version: v.coverage for v in svc.model_health().versions}
    svc.refresh(wait=True)
    second = {v.version: v.coverage for v in svc.model_health().versions}
    assert second["old"] == first["old"]  # kept, not recomputed
    assert second["new"] is not None and first["new"] is not None
    assert second["new"].snapshot_id != first["new"].snapshot_id
