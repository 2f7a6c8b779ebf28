"""The ``users`` collection (``_id`` is the user id)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fastinsight.errors import ValidationFailed
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import find_by_ids, insert_ignoring_duplicates, literal
from fastinsight.storage.mongo.doclock import document_lock
from fastinsight.storage.mongo.schema import (
    FRESH_INTERACTIONS,
    INTERACTIONS,
    USER_ERASURES,
    USERS,
)

PUBLIC_FIELDS = {"_id": 0, "user_id": 1, "attributes": 1, "created_at": 1, "updated_at": 1}


def _now() -> datetime:
    return datetime.now(UTC)


def attribute_update(attributes: dict[str, Any]) -> Document:
    """``$set``/``$unset`` of ``attributes.<key>`` paths for a merge patch (``None`` removes).

    Each key becomes part of a field path, so one that could become an operator
    (``$...``), a deeper path (``.``) or a truncated name (NUL) is refused here too,
    whatever the caller validated.
    """
    for key in attributes:
        if not isinstance(key, str) or not key or key.startswith("$") or "." in key or "\x00" in key:
            raise ValidationFailed.field(
                "attributes", f"key {key!r} must be non-empty, not start with '$' and "
                "contain neither '.' nor NUL"
            )
    update: Document = {}
    removed = {f"attributes.{k}": "" for k, v in attributes.items() if v is None}
    kept = {f"attributes.{k}": v for k, v in attributes.items() if v is not None}
    if kept:
        update["$set"] = kept
    if removed:
        update["$unset"] = removed
    return update


def erasure_key(user_id: str) -> str:
    """Tombstone id of an erased user: a digest, so the log keeps no user ids."""
    return hashlib.blake2b(user_id.encode(), digest_size=16).hexdigest()


class UserRepository:
    def __init__(self, db: Database[Document]) -> None:
        self.db = db
        self.col = db[USERS]

    @staticmethod
    def document(user_id: str, attributes: dict[str, Any], now: datetime) -> Document:
        return {
            "_id": user_id, "user_id": user_id, "attributes": attributes,
            "created_at": now, "updated_at": now,
        }

    def get(self, user_id: str) -> Document | None:
        return self.col.find_one({"_id": literal(user_id)}, PUBLIC_FIELDS)

    def upsert(self, user_id: str, attributes: dict[str, Any]) -> tuple[Document, bool]:
        """Create or replace attributes; returns (document, created)."""
        now = _now()
        try:
            doc = self.document(user_id, attributes, now)
            self.col.insert_one(doc)
            doc.pop("_id")
            return doc, True
        except DuplicateKeyError:
            self.col.update_one(
                {"_id": literal(user_id)},
                {"$set": {"attributes": attributes, "updated_at": now}},
            )
            stored = self.get(user_id)
            assert stored is not None
            return stored, False

    def patch_attributes(self, user_id: str, attributes: dict[str, Any]) -> Document | None:
        """Merge ``attributes`` into the stored ones; a key whose value is ``None`` is removed.

        One update with ``$set``/``$unset`` on ``attributes.<key>`` paths, so patches of
        different keys that run at the same time never overwrite each other (a read,
        merge and write back lost them). The short document lock is for FerretDB, whose
        updates are themselves a read and a write back (see ``doclock``). Returns
        ``None`` if the user does not exist.
        """
        update = attribute_update(attributes)
        update.setdefault("$set", {})["updated_at"] = _now()
        with document_lock(self.db, f"{USERS}/{literal(user_id)}"):
            matched = self.col.update_one({"_id": user_id}, update).matched_count
        return self.get(user_id) if matched else None

    def insert_many_new(self, documents: Sequence[Document]) -> tuple[int, list[int]]:
        outcome = insert_ignoring_duplicates(self.col, documents)
        return outcome.inserted, outcome.duplicate_positions

    def get_many(self, user_ids: Iterable[str]) -> dict[str, Document]:
        return find_by_ids(self.col, user_ids)

    def replace(self, document: Document) -> None:
        self.col.replace_one({"_id": document["_id"]}, document)

    def ensure_exist(self, user_ids: Iterable[str]) -> int:
        """Create bare users for ids not stored yet; returns how many were created."""
        now = _now()
        docs = [self.document(uid, {}, now) for uid in dict.fromkeys(user_ids)]
        return insert_ignoring_duplicates(self.col, docs).inserted

    def delete(self, user_id: str) -> tuple[bool, int]:
        """Erase a user and every interaction of theirs (right to erasure)."""
        uid = literal(user_id)
        deleted = self.col.delete_one({"_id": uid}).deleted_count == 1
        removed = self.db[INTERACTIONS].delete_many({"user_id": uid}).deleted_count
        self.db[FRESH_INTERACTIONS].delete_many({"user_id": uid})
        if deleted or removed:
            # Serving processes still hold this user's trained row until the next
            # training: the tombstone (a hash, not the id) tells every one of them.
            self.db[USER_ERASURES].replace_one(
                {"_id": erasure_key(user_id)},
                {"_id": erasure_key(user_id), "erased_at": _now()}, upsert=True,
            )
        return deleted, removed

    def prune_erasures(self, before: datetime, dry_run: bool = False) -> int:
        """Drop erasure tombstones older than ``before``; returns how many (would go)."""
        query: Document = {"erased_at": {"$lt": before}}
        col = self.db[USER_ERASURES]
        return col.count_documents(query) if dry_run else col.delete_many(query).deleted_count

    def erasures_since(self, since: datetime | None) -> list[Document]:
        query: Document = {"erased_at": {"$gte": since}} if since else {}
        return list(self.db[USER_ERASURES].find(query))

    def list_page(self, limit: int, after: str | None) -> list[Document]:
        query: Document = {"_id": {"$gt": literal(after)}} if after else {}
        return list(self.col.find(query, PUBLIC_FIELDS).sort("_id", ASCENDING).limit(limit))
