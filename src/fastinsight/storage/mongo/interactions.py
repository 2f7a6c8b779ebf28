"""The ``interactions`` fact collection and its small real-time companion.

``interactions`` holds every event. Events posted through the API are also written to
``fresh_interactions``, which every serving process polls (``fresh_since``) to reflect
new activity without retraining; each training run truncates it up to the data snapshot
it trained on, so it stays small (on the FerretDB development server a non-``_id``
query scans a collection).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import InsertOutcome, insert_ignoring_duplicates, literal
from fastinsight.storage.mongo.schema import FRESH_INTERACTIONS, INTERACTIONS

PUBLIC_FIELDS = {"_id": 0, "user_id": 1, "item_id": 1, "type": 1, "value": 1, "timestamp": 1,
                 "event_id": 1}
TRAINING_FIELDS = {"_id": 0, "user_id": 1, "item_id": 1, "type": 1, "value": 1, "timestamp": 1}
FRESH_FIELDS = {**TRAINING_FIELDS, "_id": 1, "ingested_at": 1}


def interaction_key(
    user_id: str, item_id: str, type_: str, timestamp: datetime, event_id: str | None,
    file_row: int | None = None, value: float | None = None,
) -> str:
    """Deterministic ``_id``: the client's event id, else a hash of what identifies the event.

    ``file_row`` is set for a file row that has neither a timestamp nor an event id: its
    time is the import's, so the key hashes the row's content and its row number instead,
    and sending the same file again finds the same keys (no duplicates).
    """
    if event_id:
        return f"e:{event_id}"
    if file_row is not None:
        raw = f"{user_id}\x1f{item_id}\x1f{type_}\x1f{value!r}\x1frow {file_row}".encode()
        return "r:" + hashlib.blake2b(raw, digest_size=16).hexdigest()
    raw = f"{user_id}\x1f{item_id}\x1f{type_}\x1f{timestamp.isoformat()}".encode()
    return "h:" + hashlib.blake2b(raw, digest_size=16).hexdigest()


def interaction_document(
    user_id: str, item_id: str, type_: str, value: float | None, timestamp: datetime,
    event_id: str | None, recommendation_id: str | None = None, file_row: int | None = None,
) -> Document:
    doc: Document = {
        "_id": interaction_key(user_id, item_id, type_, timestamp, event_id, file_row, value),
        "user_id": user_id, "item_id": item_id, "type": type_, "value": value,
        "timestamp": timestamp, "day": timestamp.strftime("%Y-%m-%d"),
    }
    if event_id:
        doc["event_id"] = event_id
    if recommendation_id:
        doc["recommendation_id"] = recommendation_id
    return doc


class InteractionRepository:
    def __init__(self, db: Database[Document]) -> None:
        self.db = db
        self.col = db[INTERACTIONS]
        self.fresh = db[FRESH_INTERACTIONS]

    def insert_many(self, documents: Sequence[Document]) -> InsertOutcome:
        return insert_ignoring_duplicates(self.col, documents)

    def insert_fresh(self, documents: Sequence[Document]) -> InsertOutcome:
        return insert_ignoring_duplicates(self.fresh, documents)

    def for_user(
        self, user_id: str, limit: int, before: datetime | None = None
    ) -> list[Document]:
        query: Document = {"user_id": literal(user_id)}
        if before is not None:
            query["timestamp"] = {"$lt": before}
        cursor = self.col.find(query, PUBLIC_FIELDS).sort("timestamp", DESCENDING).limit(limit)
        return list(cursor)

    def fresh_since(self, since: datetime | None, batch_size: int = 5_000) -> Iterator[list[Document]]:
        """Real-time events ingested at or after ``since`` (all without), with ``_id``, in
        lists of at most ``batch_size``: a reader holds one batch at a time, never the
        whole buffer."""
        query: Document = {"ingested_at": {"$gte": since}} if since else {}
        batch: list[Document] = []
        for doc in self.fresh.find(query, FRESH_FIELDS, batch_size=batch_size):
            batch.append(doc)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def fresh_of_user(self, user_id: str) -> list[Document]:
        """One user's real-time events (capped per user by whoever reads them)."""
        return list(self.fresh.find({"user_id": literal(user_id)}, FRESH_FIELDS))

    def truncate_fresh(self, until: datetime) -> int:
        """Drop real-time events already covered by a training snapshot ending at ``until``."""
        return int(self.fresh.delete_many({"ingested_at": {"$lte": until}}).deleted_count)

    def iter_training_rows(
        self, since: datetime | None = None, batch_size: int = 10_000
    ) -> Iterator[dict[str, Any]]:
        query: Document = {"timestamp": {"$gte": since}} if since else {}
        yield from self.col.find(query, TRAINING_FIELDS, batch_size=batch_size)
