"""Served recommendation lists (impressions) and what clients report as displayed.

An impression's ``_id`` is its recommendation id, so an interaction that names one finds
it by ``_id`` and a retried batch insert turns into duplicate-key errors, not copies.
Documents: ``{_id, user_id, endpoint, items, model_version, ts}`` plus ``offset``,
``experiment_id`` and ``variant`` when set; displays: ``{_id: recommendation id, items, displayed_at,
received_at}`` (the first report of a list wins).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from pymongo import ASCENDING
from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import InsertOutcome, insert_ignoring_duplicates, literal
from fastinsight.storage.mongo.schema import IMPRESSION_DISPLAYS, IMPRESSIONS, INTERACTIONS

JOIN_FIELDS = {"_id": 1, "user_id": 1, "items": 1, "offset": 1, "ts": 1, "experiment_id": 1,
               "variant": 1, "model_version": 1, "endpoint": 1}
EVENT_FIELDS = {"_id": 1, "user_id": 1, "item_id": 1, "type": 1, "value": 1, "timestamp": 1,
                "recommendation_id": 1}


class ImpressionRepository:
    def __init__(self, db: Database[Document]) -> None:
        self.col = db[IMPRESSIONS]
        self.displays = db[IMPRESSION_DISPLAYS]
        self.interactions = db[INTERACTIONS]

    def insert_many(self, documents: Sequence[Document]) -> InsertOutcome:
        return insert_ignoring_duplicates(self.col, documents)

    def insert_displays(self, documents: Sequence[Document]) -> InsertOutcome:
        return insert_ignoring_duplicates(self.displays, documents)

    def get(self, recommendation_id: str) -> Document | None:
        return self.col.find_one({"_id": literal(recommendation_id)})

    def between(self, start: datetime, end: datetime, batch_size: int = 5_000) -> Iterator[Document]:
        """Impressions served in ``[start, end]``, oldest first (the fields a join needs)."""
        query = {"ts": {"$gte": start, "$lte": end}}
        yield from self.col.find(query, JOIN_FIELDS, batch_size=batch_size).sort("ts", ASCENDING)

    def displays_between(self, start: datetime, end: datetime) -> Iterator[Document]:
        """Display reports received in ``[start, end]``."""
        yield from self.displays.find({"received_at": {"$gte": start, "$lte": end}},
                                      {"_id": 1, "items": 1})

    def events_between(self, start: datetime, end: datetime, batch_size: int = 5_000) -> Iterator[Document]:
        """Interactions whose time lies in ``[start, end]`` (the fields attribution needs)."""
        query = {"timestamp": {"$gte": start, "$lte": end}}
        yield from self.interactions.find(query, EVENT_FIELDS, batch_size=batch_size)

    def erase_user(self, user_id: str) -> int:
        """Delete a user's impressions (part of erasing the user)."""
        return int(self.col.delete_many({"user_id": literal(user_id)}).deleted_count)

    def count_for(self, experiment_id: str) -> int:
        return int(self.col.count_documents({"experiment_id": literal(experiment_id)}))
