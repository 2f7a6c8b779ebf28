"""Known-answer data for the insight tests: rows are generated here, inserted directly,
and every expected number is recomputed from these rows in plain Python."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymongo.database import Database

from fastinsight.storage.mongo.interactions import interaction_document
from fastinsight.storage.mongo.models import EMBEDDINGS_FILE, ModelVersionRepository

CATEGORIES = ["outdoors", "fitness", "books", "kitchen"]
TYPES = ["view", "view", "view", "click", "click", "add_to_cart", "purchase", "like"]


@dataclass
class Dataset:
    now: datetime
    items: list[dict[str, Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def catalogue(self) -> dict[str, dict[str, Any]]:
        return {i["_id"]: i for i in self.items}


def insert_items(db: Database[dict[str, Any]], items: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    docs = [{"item_id": i["_id"], "description": "", "tags": [], "attributes": {},
             "published_at": None, "created_at": now, "updated_at": now, **i} for i in items]
    db["items"].insert_many(docs)


def insert_rows(db: Database[dict[str, Any]], rows: list[dict[str, Any]], fresh: bool = False) -> None:
    docs = [interaction_document(r["user_id"], r["item_id"], r["type"], None, r["timestamp"], None)
            for r in rows]
    db["fresh_interactions" if fresh else "interactions"].insert_many(docs)


def make_dataset(seed: int = 3, users: int = 40, items: int = 30, events: int = 1500,
                 days: int = 60) -> Dataset:
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC)
    catalogue = []
    for n in range(items):
        cats = [CATEGORIES[n % 4]] + ([CATEGORIES[(n + 1) % 4]] if n % 5 == 0 else [])
        catalogue.append({"_id": f"i{n:02d}", "title": f"Item {n}", "categories": cats,
                          "hidden": n == 7})
    data = Dataset(now=now, items=catalogue)
    active_items = items - 3  # the last three items never get an event
    for _ in range(events):
        item = int(min(rng.zipf(1.6) - 1, active_items - 1))
        data.rows.append({
            "user_id": f"u{int(rng.integers(users)):03d}", "item_id": f"i{item:02d}",
            "type": TYPES[int(rng.integers(len(TYPES)))],
            "timestamp": now - timedelta(seconds=float(rng.uniform(0, days * 86400))),
        })
    # one event on an item that is not in the catalogue (deleted since)
    data.rows.append({"user_id": "u000", "item_id": "gone", "type": "view",
                      "timestamp": now - timedelta(days=2)})
    return data


@pytest.fixture()
def dataset(db: Database[dict[str, Any]]) -> Dataset:
    data = make_dataset()
    insert_items(db, data.items)
    insert_rows(db, data.rows)
    return data


def save_embeddings(
    db: Database[dict[str, Any]], version: str, user_ids: list[str], user_vectors: np.ndarray,
    item_ids: list[str], item_vectors: np.ndarray, activate: bool = True,
    created_at: datetime | None = None, metrics: dict[str, float] | None = None,
) -> None:
    repo = ModelVersionRepository(db)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / EMBEDDINGS_FILE, user_ids=np.asarray(user_ids, dtype=str),
                 user_vectors=np.asarray(user_vectors, dtype=np.float32),
                 item_ids=np.asarray(item_ids, dtype=str),
                 item_vectors=np.asarray(item_vectors, dtype=np.float32))
        repo.save({"version": version, "algorithm": "test", "status": "ready",
                   "created_at": created_at or datetime.now(UTC), "metrics": metrics or {},
                   "snapshot": {"interactions": 10, "users": len(user_ids), "items": len(item_ids)}},
                  Path(tmp))
    if activate:
        repo.activate(version, "test")
