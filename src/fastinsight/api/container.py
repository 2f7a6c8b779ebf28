"""Everything a request needs, built once per process in the app's lifespan."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.services.data.catalog import CatalogService
from fastinsight.services.data.ingest import IngestService
from fastinsight.storage.mongo import apply_indexes, connect, get_database
from fastinsight.storage.mongo.client import Document

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    client: MongoClient[Document]
    db: Database[Document]
    catalog: CatalogService
    ingest: IngestService
    extras: dict[str, Any] = field(default_factory=dict)
    schema_applied: bool = False

    @classmethod
    def build(cls, settings: Settings) -> Container:
        client = connect(settings)
        db = get_database(client, settings)
        return cls(
            settings=settings, client=client, db=db,
            catalog=CatalogService(db), ingest=IngestService(db, settings),
        )

    def ensure_schema(self) -> bool:
        """Apply indexes once; tolerate a database that is down at start-up."""
        if self.schema_applied:
            return True
        try:
            apply_indexes(self.db)
        except Exception as exc:  # the app starts anyway and reports not-ready
            log.warning("could not apply indexes yet: %s", exc.__class__.__name__)
            return False
        self.schema_applied = True
        return True

    def close(self) -> None:
        self.client.close()
