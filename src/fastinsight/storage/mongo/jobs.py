"""The ``jobs`` collection (one document per run) and ``job_locks`` (one per running kind).

A lock is a document whose ``_id`` is the job name: inserting it acquires the lock, a
duplicate-key error means another run holds it, deleting it releases it. Single-document
inserts on ``_id`` are atomic on FerretDB and MongoDB alike, so this needs neither
transactions nor ``findAndModify`` semantics.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import literal
from fastinsight.storage.mongo.schema import JOBS

JOB_LOCKS = "job_locks"
FINAL_STATUSES = ("succeeded", "failed", "timed_out")


class JobStore:
    def __init__(self, db: Database[Document]) -> None:
        self.db = db
        self.jobs = db[JOBS]
        self.locks = db[JOB_LOCKS]

    # ---- locks ---------------------------------------------------------------------
    def acquire_lock(self, name: str, job_id: str, owner: dict[str, Any], now: datetime) -> bool:
        try:
            self.locks.insert_one(
                {"_id": literal(name), "job_id": job_id, "owner": owner, "acquired_at": now}
            )
        except DuplicateKeyError:
            return False
        return True

    def get_lock(self, name: str) -> Document | None:
        return self.locks.find_one({"_id": literal(name)})

    def release_lock(self, name: str, job_id: str) -> bool:
        """Delete the lock only if ``job_id`` still holds it."""
        lock = self.get_lock(name)
        if lock is None or lock.get("job_id") != job_id:
            return False
        return self.locks.delete_one({"_id": literal(name), "job_id": job_id}).deleted_count == 1

    def all_locks(self) -> list[Document]:
        return list(self.locks.find({}))

    # ---- job records -----------------------------------------------------------------
    def insert(self, job: Document) -> None:
        self.jobs.insert_one(job)

    def get(self, job_id: str) -> Document | None:
        return self.jobs.find_one({"_id": literal(job_id)})

    def update(self, job_id: str, fields: dict[str, Any]) -> None:
        self.jobs.update_one({"_id": literal(job_id)}, {"$set": fields})

    def finish(self, job_id: str, fields: dict[str, Any]) -> bool:
        """Set the final fields unless the record already has a final status."""
        result = self.jobs.update_one(
            {"_id": literal(job_id), "status": {"$nin": list(FINAL_STATUSES)}}, {"$set": fields}
        )
        return result.modified_count == 1

    def recent(
        self, *, name: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[Document]:
        query: dict[str, Any] = {}
        if name is not None:
            query["name"] = literal(name)
        if status is not None:
            query["status"] = literal(status)
        cursor = self.jobs.find(query).sort("created_at", DESCENDING).limit(limit)
        return list(cursor)

    def running(self) -> list[Document]:
        return list(self.jobs.find({"status": {"$in": ["running", "queued"]}}))

    def delete_finished_before(self, cutoff: datetime, *, dry_run: bool = False) -> int:
        query = {"status": {"$in": list(FINAL_STATUSES)}, "finished_at": {"$lt": cutoff}}
        if dry_run:
            return self.jobs.count_documents(query)
        return self.jobs.delete_many(query).deleted_count
