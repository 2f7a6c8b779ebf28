"""The ``items`` collection (``_id`` is the item id)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import find_by_ids, insert_ignoring_duplicates, literal
from fastinsight.storage.mongo.doclock import document_lock
from fastinsight.storage.mongo.schema import (
    FRESH_INTERACTIONS,
    INTERACTIONS,
    ITEM_CHANGES,
    ITEM_DELETIONS,
    ITEMS,
)

PUBLIC_FIELDS = {
    "_id": 0, "item_id": 1, "title": 1, "description": 1, "categories": 1, "tags": 1,
    "attributes": 1, "hidden": 1, "published_at": 1, "created_at": 1, "updated_at": 1,
}
# More changed ids than this since the last look: one scan of ``items`` is cheaper than
# reading them one by one.
CHANGES_READ_ONE_BY_ONE = 2000


class ItemRepository:
    def __init__(self, db: Database[Document]) -> None:
        self.db = db
        self.col = db[ITEMS]

    @staticmethod
    def document(fields: dict[str, Any], now: datetime) -> Document:
        return {"_id": fields["item_id"], **fields, "created_at": now, "updated_at": now}

    def get(self, item_id: str) -> Document | None:
        return self.col.find_one({"_id": literal(item_id)}, PUBLIC_FIELDS)

    def exists(self, item_id: str) -> bool:
        return self.col.find_one({"_id": literal(item_id)}, {"_id": 1}) is not None

    def _lock(self, item_id: str) -> AbstractContextManager[None]:
        """The item's document lock, held by every update of a stored item: on FerretDB an
        update reads the whole item and writes it back, so two at once (a PATCH of
        ``hidden`` and one of ``title``) could each undo the other (see ``doclock``)."""
        return document_lock(self.db, f"{ITEMS}/{literal(item_id)}")

    def _changed(self, item_ids: Sequence[str], now: datetime) -> None:
        """Append to the change feed other serving processes read (``changed_since``)."""
        if item_ids:
            self.db[ITEM_CHANGES].insert_one({"at": now, "item_ids": list(item_ids)})

    def upsert(self, fields: dict[str, Any]) -> tuple[Document, bool]:
        now = datetime.now(UTC)
        self._changed([fields["item_id"]], now)
        try:
            self.col.insert_one(self.document(fields, now))
            created = True
        except DuplicateKeyError:
            content = {k: v for k, v in fields.items() if k != "item_id"}
            with self._lock(fields["item_id"]):
                self.col.update_one(
                    {"_id": literal(fields["item_id"])}, {"$set": {**content, "updated_at": now}}
                )
            created = False
        stored = self.get(fields["item_id"])
        assert stored is not None
        return stored, created

    def patch(self, item_id: str, changes: dict[str, Any]) -> Document | None:
        if self.get(item_id) is None:
            return None
        if changes:
            with self._lock(item_id):
                self._changed([item_id], datetime.now(UTC))
                self.col.update_one(
                    {"_id": literal(item_id)},
                    {"$set": {**changes, "updated_at": datetime.now(UTC)}},
                )
        return self.get(item_id)

    def insert_many_new(self, documents: Sequence[Document]) -> tuple[int, list[int]]:
        self._changed([d["_id"] for d in documents], datetime.now(UTC))
        outcome = insert_ignoring_duplicates(self.col, documents)
        return outcome.inserted, outcome.duplicate_positions

    def hidden_among(self, item_ids: Sequence[str]) -> set[str]:
        """Which of ``item_ids`` are hidden or no longer stored."""
        ids = [literal(i) for i in item_ids]
        found = {d["_id"]: bool(d.get("hidden", False))
                 for d in self.col.find({"_id": {"$in": ids}}, {"_id": 1, "hidden": 1})}
        return {i for i in item_ids if found.get(i, True)}

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Document]:
        return find_by_ids(self.col, item_ids)

    def replace(self, document: Document) -> None:
        with self._lock(document["_id"]):
            self._changed([document["_id"]], datetime.now(UTC))
            self.col.replace_one({"_id": document["_id"]}, document)

    def all_ids(self) -> set[str]:
        return {str(d["_id"]) for d in self.col.find({}, {"_id": 1})}

    def all_documents(self) -> list[Document]:
        return list(self.col.find({}, PUBLIC_FIELDS))

    def changed_since(self, moment: datetime) -> list[Document]:
        """Items written through this repository after ``moment``, read through the
        change feed: on FerretDB a range query on ``items`` scans every item (about 4.5 s
        of server CPU at 100,000), the feed only holds recent writes."""
        ids: dict[str, None] = {}
        for entry in self.db[ITEM_CHANGES].find({"at": {"$gt": moment}}, {"item_ids": 1}):
            ids.update(dict.fromkeys(str(i) for i in entry.get("item_ids", ())))
            if len(ids) > CHANGES_READ_ONE_BY_ONE:
                return list(self.col.find({"updated_at": {"$gt": moment}}, PUBLIC_FIELDS))
        found = find_by_ids(self.col, ids)
        return [{k: v for k, v in doc.items() if PUBLIC_FIELDS.get(k)} for doc in found.values()]

    def prune_changes(self, before: datetime, dry_run: bool = False) -> int:
        """Drop change-feed entries older than ``before``; returns how many (would go)."""
        query: Document = {"at": {"$lt": before}}
        col = self.db[ITEM_CHANGES]
        return col.count_documents(query) if dry_run else col.delete_many(query).deleted_count

    def deleted_since(self, moment: datetime) -> list[str]:
        """Ids of items deleted after ``moment`` (tombstones, so other processes can drop them)."""
        docs = self.db[ITEM_DELETIONS].find({"deleted_at": {"$gt": moment}}, {"_id": 1})
        return [str(d["_id"]) for d in docs]

    def prune_deletions(self, before: datetime, dry_run: bool = False) -> int:
        """Drop deletion tombstones older than ``before``; returns how many (would go)."""
        query: Document = {"deleted_at": {"$lt": before}}
        col = self.db[ITEM_DELETIONS]
        return col.count_documents(query) if dry_run else col.delete_many(query).deleted_count

    def delete(self, item_id: str) -> tuple[bool, int]:
        iid = literal(item_id)
        deleted = self.col.delete_one({"_id": iid}).deleted_count == 1
        removed = self.db[INTERACTIONS].delete_many({"item_id": iid}).deleted_count
        self.db[FRESH_INTERACTIONS].delete_many({"item_id": iid})
        if deleted:
            self.db[ITEM_DELETIONS].replace_one(
                {"_id": iid}, {"_id": iid, "deleted_at": datetime.now(UTC)}, upsert=True)
        return deleted, removed

    def list_page(
        self, limit: int, after: str | None, category: str | None = None
    ) -> list[Document]:
        query: Document = {}
        if after:
            query["_id"] = {"$gt": literal(after)}
        if category:
            query["categories"] = literal(category)
        return list(self.col.find(query, PUBLIC_FIELDS).sort("_id", ASCENDING).limit(limit))
