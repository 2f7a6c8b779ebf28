"""The control database: ``tenants`` (one document per tenant) and ``tenant_keys``.

A key document's ``_id`` is the SHA-256 of the key (the key itself is never stored);
it names its tenant and scope. Keys are random 32-byte tokens, so an unsalted digest is
as strong as the token: nothing to brute-force. The control database is created by the
first write (creating a tenant or a key), so a single-tenant deployment that never uses
the operator API has none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, MongoClient
from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import as_pairs, from_pairs, literal

TENANTS = "tenants"
TENANT_KEYS = "tenant_keys"

CONTROL_INDEXES: dict[str, list[IndexModel]] = {
    TENANTS: [IndexModel([("created_at", ASCENDING)], name="created_at")],
    TENANT_KEYS: [IndexModel([("tenant", ASCENDING), ("created_at", ASCENDING)], name="tenant")],
}


def _boosts(doc: Document, convert: Any) -> Document:
    """``doc`` with ``settings.boost_categories`` converted: keyed by category names, which
    need not be legal MongoDB field names, it is stored as pairs."""
    settings = doc.get("settings")
    if not settings or settings.get("boost_categories") is None:
        return doc
    return {**doc, "settings": {**settings, "boost_categories": convert(settings["boost_categories"])}}


class TenantRepository:
    def __init__(self, client: MongoClient[Document], control_db: str) -> None:
        self.client = client
        self.db: Database[Document] = client[control_db]
        self.tenants = self.db[TENANTS]
        self.keys = self.db[TENANT_KEYS]
        self._indexed = False

    def ensure_schema(self) -> None:
        if self._indexed:
            return
        for name, indexes in CONTROL_INDEXES.items():
            self.db[name].create_indexes(indexes)
        self._indexed = True

    # ---- tenants -----------------------------------------------------------------------
    def insert(self, doc: Document) -> None:
        self.ensure_schema()
        self.tenants.insert_one(_boosts(doc, as_pairs))

    def get(self, tenant_id: str) -> Document | None:
        doc = self.tenants.find_one({"_id": literal(tenant_id)})
        return None if doc is None else _boosts(doc, from_pairs)

    def all(self) -> list[Document]:
        return [_boosts(doc, from_pairs) for doc in self.tenants.find({}).sort("created_at", ASCENDING)]

    def update(self, tenant_id: str, fields: dict[str, Any]) -> Document | None:
        self.tenants.update_one({"_id": literal(tenant_id)}, {"$set": _boosts(fields, as_pairs)})
        return self.get(tenant_id)

    def delete(self, tenant_id: str) -> None:
        self.keys.delete_many({"tenant": literal(tenant_id)})
        self.tenants.delete_one({"_id": literal(tenant_id)})

    # ---- keys --------------------------------------------------------------------------
    def insert_key(self, doc: Document) -> None:
        self.ensure_schema()
        self.keys.insert_one(doc)

    def key(self, digest: str) -> Document | None:
        return self.keys.find_one({"_id": literal(digest)})

    def keys_of(self, tenant_id: str) -> list[Document]:
        return list(self.keys.find({"tenant": literal(tenant_id)}).sort("created_at", ASCENDING))

    def all_keys(self) -> list[Document]:
        return list(self.keys.find({"revoked_at": None}))

    def revoke_key(self, tenant_id: str, key_id: str, at: datetime) -> bool:
        result = self.keys.update_one(
            {"tenant": literal(tenant_id), "key_id": literal(key_id), "revoked_at": None},
            {"$set": {"revoked_at": at}})
        return result.modified_count == 1

    def database_names(self) -> list[str]:
        return list(self.client.list_database_names())
