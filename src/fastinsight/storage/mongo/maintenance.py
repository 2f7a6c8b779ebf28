"""The write-pause flag: one small document in ``service_state``.

A backup that needs every collection to describe the same moment sets it (``ops``),
every writer reads it before writing (``services.writes``). Storage only knows where
the flag lives and what it looks like.
"""

from __future__ import annotations

from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.schema import SETTINGS_STATE

STATE_COLLECTION = SETTINGS_STATE
FLAG_ID = "maintenance"


def read_pause_flag(db: Database[Document]) -> Document | None:
    """The flag document when writes are paused, else ``None`` (one ``_id`` lookup)."""
    doc = db[STATE_COLLECTION].find_one({"_id": FLAG_ID})
    return doc if doc and doc.get("read_only") else None


def set_pause_flag(db: Database[Document], fields: Document) -> None:
    db[STATE_COLLECTION].replace_one({"_id": FLAG_ID}, {**fields, "_id": FLAG_ID, "read_only": True},
                                     upsert=True)


def clear_pause_flag(db: Database[Document]) -> None:
    db[STATE_COLLECTION].delete_one({"_id": FLAG_ID})


def clear_pause_flag_of(db: Database[Document], owner: str) -> bool:
    """Clear the flag only if ``owner`` still holds it (another backup may have set it since)."""
    return db[STATE_COLLECTION].delete_one({"_id": FLAG_ID, "owner": owner}).deleted_count > 0
