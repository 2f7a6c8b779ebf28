"""Helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from fastinsight.storage.mongo.client import Document

DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class InsertOutcome:
    inserted: int
    duplicate_positions: list[int]


def insert_ignoring_duplicates(
    collection: Collection[Document], documents: Sequence[Document]
) -> InsertOutcome:
    """Unordered bulk insert; documents whose ``_id`` already exists are reported, not raised.

    This is the idempotency primitive: ids are deterministic, so a retried write turns
    into duplicate-key errors that the caller counts instead of duplicate rows.
    """
    if not documents:
        return InsertOutcome(0, [])
    try:
        result = collection.insert_many(list(documents), ordered=False)
        return InsertOutcome(len(result.inserted_ids), [])
    except BulkWriteError as exc:
        errors: list[dict[str, Any]] = exc.details.get("writeErrors", [])
        other = [e for e in errors if e.get("code") != DUPLICATE_KEY]
        if other:
            raise
        positions = sorted(int(e["index"]) for e in errors)
        return InsertOutcome(int(exc.details.get("nInserted", 0)), positions)


def find_by_ids(collection: Collection[Document], ids: Iterable[str]) -> dict[str, Document]:
    """Fetch documents one ``_id`` at a time.

    Deliberately not ``$in``: on the FerretDB/SQLite development server only ``_id``
    equality is an index lookup, and per-id lookups are fast on MongoDB too.
    """
    found: dict[str, Document] = {}
    for doc_id in dict.fromkeys(ids):
        doc = collection.find_one({"_id": doc_id})
        if doc is not None:
            found[doc_id] = doc
    return found


def literal(value: str) -> str:
    """Guard for values used in filters: ids are plain strings, never operator objects."""
    if not isinstance(value, str):
        raise TypeError("filter values must be strings")
    return value


def as_pairs(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """A mapping keyed by user text, in a form MongoDB stores: ``[{"k": key, "v": value}]``.

    Keys such as ``$gt`` or ``a.b`` are legal category names but not legal field names
    (MongoDB refuses a field starting with ``$``; a dot reads as a path). Pairs are
    sub-documents, not two-element arrays: FerretDB refuses arrays inside arrays."""
    return [{"k": key, "v": value} for key, value in mapping.items()]


def from_pairs(stored: Any) -> dict[str, Any]:
    """:func:`as_pairs` undone; a mapping stored as a sub-document (before) reads as is."""
    if isinstance(stored, dict):
        return dict(stored)
    return {str(pair["k"]): pair["v"] for pair in stored or ()}
