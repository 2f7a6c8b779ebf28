"""The ``evaluations`` collection: one document per offline evaluation report."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.schema import EVALUATIONS


class EvaluationRepository:
    def __init__(self, db: Database[Document]) -> None:
        self.col = db[EVALUATIONS]

    def insert(self, doc: Document) -> Any:
        """Store one report; returns its ``_id``."""
        return self.col.insert_one(doc).inserted_id
