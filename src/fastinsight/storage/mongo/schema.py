"""Collections and their indexes, declared as data and applied by ``db init`` and at start-up.

Document ids are chosen so that the hot paths read by ``_id`` only: users and items use
their own ids, interactions a deterministic key (client ``event_id`` or a hash of
user/item/type/timestamp), which also makes re-imports idempotent.
"""

from __future__ import annotations

import contextlib
import logging

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import CollectionInvalid

from fastinsight.storage.mongo.client import Document

log = logging.getLogger(__name__)

USERS = "users"
ITEMS = "items"
INTERACTIONS = "interactions"
FRESH_INTERACTIONS = "fresh_interactions"
MODEL_VERSIONS = "model_versions"
EVALUATIONS = "evaluations"
JOBS = "jobs"
SETTINGS_STATE = "service_state"
USER_ERASURES = "user_erasures"
ITEM_DELETIONS = "item_deletions"
ITEM_CHANGES = "item_changes"
IMPRESSIONS = "impressions"
IMPRESSION_DISPLAYS = "impression_displays"
EXPERIMENTS = "experiments"

INDEXES: dict[str, list[IndexModel]] = {
    USERS: [
        IndexModel([("user_id", ASCENDING)], unique=True, name="user_id_unique"),
        IndexModel([("created_at", DESCENDING)], name="created_at"),
    ],
    ITEMS: [
        IndexModel([("item_id", ASCENDING)], unique=True, name="item_id_unique"),
        IndexModel([("categories", ASCENDING)], name="categories"),
        IndexModel([("created_at", DESCENDING)], name="created_at"),
        IndexModel([("updated_at", DESCENDING)], name="updated_at"),
    ],
    INTERACTIONS: [
        IndexModel([("user_id", ASCENDING), ("timestamp", DESCENDING)], name="user_newest_first"),
        IndexModel([("item_id", ASCENDING), ("timestamp", DESCENDING)], name="item_newest_first"),
        IndexModel([("timestamp", DESCENDING)], name="timestamp"),
    ],
    FRESH_INTERACTIONS: [
        IndexModel([("user_id", ASCENDING), ("timestamp", DESCENDING)], name="user_newest_first"),
        IndexModel([("ingested_at", ASCENDING)], name="ingested_at"),
    ],
    USER_ERASURES: [
        IndexModel([("erased_at", ASCENDING)], name="erased_at"),
    ],
    ITEM_DELETIONS: [
        IndexModel([("deleted_at", ASCENDING)], name="deleted_at"),
    ],
    ITEM_CHANGES: [
        IndexModel([("at", ASCENDING)], name="at"),
    ],
    MODEL_VERSIONS: [
        IndexModel([("version", ASCENDING)], unique=True, name="version_unique"),
        IndexModel([("created_at", DESCENDING)], name="created_at"),
    ],
    EVALUATIONS: [
        IndexModel([("model_version", ASCENDING)], name="model_version"),
    ],
    # Served lists in buckets (storage/mongo/impressions.py): reports, attribution and
    # online metrics read a time range. Databases created before buckets keep their
    # per-document indexes (experiment_ts, user_newest_first); they do no harm.
    IMPRESSIONS: [
        IndexModel([("ts", ASCENDING)], name="ts"),
    ],
    IMPRESSION_DISPLAYS: [
        IndexModel([("received_at", ASCENDING)], name="received_at"),
    ],
    EXPERIMENTS: [
        IndexModel([("created_at", DESCENDING)], name="created_at"),
    ],
    JOBS: [
        IndexModel([("name", ASCENDING), ("created_at", DESCENDING)], name="name_created"),
        IndexModel([("status", ASCENDING)], name="status"),
    ],
}


def apply_indexes(db: Database[Document]) -> dict[str, list[str]]:
    """Create every declared index (idempotent); returns the index names per collection."""
    created: dict[str, list[str]] = {}
    existing = set(db.list_collection_names())
    for name, models in INDEXES.items():
        if name not in existing:
            with contextlib.suppress(CollectionInvalid):  # created concurrently elsewhere
                db.create_collection(name)
        present = {ix["name"] for ix in db[name].list_indexes()}
        # One index per call, and only missing ones: FerretDB 1.24 drops the connection
        # when createIndexes names several indexes that already exist.
        for model in models:
            if model.document["name"] not in present:
                db[name].create_indexes([model])
        created[name] = [m.document["name"] for m in models]
    log.info("indexes applied to %s: %s", db.name, {k: len(v) for k, v in created.items()})
    return created
