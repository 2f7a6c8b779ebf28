"""Is this process ready to serve: database reachable, indexes applied, which version served."""

from __future__ import annotations

import logging

from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.errors import Unavailable
from fastinsight.logging_setup import FailureLog
from fastinsight.services.serving.versions import ModelManager
from fastinsight.storage.mongo import apply_indexes, ping
from fastinsight.storage.mongo.client import Document

log = logging.getLogger(__name__)


class Readiness:
    def __init__(
        self, client: MongoClient[Document], db: Database[Document], models: ModelManager
    ) -> None:
        self.client = client
        self.db = db
        self.models = models
        self.schema_applied = False
        # Every readiness probe retries while the database is down: log the first
        # failure with its traceback, then a summary every few minutes.
        self.failures = FailureLog(log, "applying the indexes")

    def ensure_schema(self) -> bool:
        """Apply indexes once; tolerate a database that is down at start-up."""
        if self.schema_applied:
            return True
        try:
            apply_indexes(self.db)
        except Exception as exc:  # the app starts anyway and reports not-ready
            self.failures.failed(exc)
            return False
        self.failures.succeeded()
        self.schema_applied = True
        return True

    def check(self) -> str | None:
        """The served model version (None before the first); ``Unavailable`` until the
        database answers and the indexes are applied."""
        ping(self.client)
        if not self.ensure_schema():
            raise Unavailable("database schema could not be applied yet")
        return self.models.active_version
