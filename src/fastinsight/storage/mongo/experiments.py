"""Experiment definitions: one small document each, read by every serving process."""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import as_pairs, from_pairs, literal
from fastinsight.storage.mongo.schema import EXPERIMENTS


def _arms(doc: Document, convert: Any) -> Document:
    """``doc`` with each arm's ``rules.boost_categories`` converted (keyed by category
    names, which need not be legal MongoDB field names: stored as pairs)."""
    if not doc.get("arms"):
        return doc
    arms = []
    for arm in doc["arms"]:
        rules = arm.get("rules")
        if rules and rules.get("boost_categories") is not None:
            arm = {**arm, "rules": {**rules, "boost_categories": convert(rules["boost_categories"])}}
        arms.append(arm)
    return {**doc, "arms": arms}


class ExperimentRepository:
    def __init__(self, db: Database[Document]) -> None:
        self.col = db[EXPERIMENTS]

    def insert(self, doc: Document) -> None:
        self.col.insert_one(_arms(doc, as_pairs))

    def get(self, experiment_id: str) -> Document | None:
        doc = self.col.find_one({"_id": literal(experiment_id)})
        return None if doc is None else _arms(doc, from_pairs)

    def list(self, limit: int = 200) -> list[Document]:
        return [_arms(doc, from_pairs)
                for doc in self.col.find({}).sort("created_at", DESCENDING).limit(limit)]

    def update(self, experiment_id: str, fields: dict[str, Any]) -> bool:
        result = self.col.update_one({"_id": literal(experiment_id)}, {"$set": _arms(fields, as_pairs)})
        return result.matched_count > 0

    def delete(self, experiment_id: str) -> bool:
        return self.col.delete_one({"_id": literal(experiment_id)}).deleted_count > 0

    def versions_in_use(self) -> set[str]:
        """Model versions named by experiments that have not ended (keep them when pruning)."""
        used: set[str] = set()
        for doc in self.col.find({"stopped_at": None}, {"arms": 1}):
            used.update(str(a["model_version"]) for a in doc.get("arms", []) if a.get("model_version"))
        return used
