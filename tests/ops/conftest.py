"""Helpers for the operations tests: a known-answer dataset and collection fingerprints."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gridfs
import pytest
from bson import Binary, Int64, ObjectId, encode
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.ops.settings import OpsSettings
from fastinsight.storage.mongo import apply_indexes

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
CLI = ROOT / ".venv" / "bin" / "fastinsight"

Db = Database[dict[str, Any]]


@pytest.fixture(autouse=True)
def _isolated_ops_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ops settings come from the environment: make sure nothing leaks in from the shell."""
    for key in list(os.environ):
        if key.startswith("FASTINSIGHT_") and key not in {"FASTINSIGHT_TEST_MONGODB_URI"}:
            monkeypatch.delenv(key, raising=False)


def ops_settings(**overrides: Any) -> OpsSettings:
    return OpsSettings(_env_file=None, **overrides)  # type: ignore[call-arg]


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for running the CLI / scripts against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")}
    env.update(
        FASTINSIGHT_MONGODB_URI=settings.mongodb_uri,
        FASTINSIGHT_MONGODB_DB=settings.mongodb_db,
        FASTINSIGHT_VAR_DIR=str(settings.var_dir),
        FASTINSIGHT_LOG_DIR=str(settings.log_dir),
        FASTINSIGHT_BIN=str(CLI),
        FASTINSIGHT_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def populate(db: Db, *, users: int = 40, items: int = 30, interactions: int = 400) -> None:
    """Deterministic data with many BSON types, the declared indexes and a GridFS file."""
    apply_indexes(db)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    db.users.insert_many(
        {
            "_id": f"u{i}",
            "user_id": f"u{i}",
            "attributes": {"age": i % 70, "vip": i % 7 == 0, "tags": ["a", str(i)], "x": None},
            "created_at": base + timedelta(minutes=i),
            "updated_at": base + timedelta(minutes=i),
        }
        for i in range(users)
    )
    db.items.insert_many(
        {
            "_id": f"i{i}",
            "item_id": f"i{i}",
            "title": f"Item ü{i} — ✓",
            "categories": ["c" + str(i % 3)],
            "price": i + 0.99,  # no Decimal128: FerretDB 1.24 drops the connection on it
            "views": Int64(10**12 + i),
            "ratio": i / 7,
            "blob": Binary(bytes(range(i % 256))),
            "oid": ObjectId(f"{i:024x}"),
            "created_at": base,
        }
        for i in range(items)
    )
    db.interactions.insert_many(
        {
            "_id": f"e{i}",
            "user_id": f"u{i % users}",
            "item_id": f"i{(i * 7) % items}",
            "type": ("view", "click", "purchase")[i % 3],
            "value": None if i % 5 else float(i),
            "timestamp": base + timedelta(seconds=i * 37),
        }
        for i in range(interactions)
    )
    db.interactions.create_indexes(
        [IndexModel([("type", ASCENDING), ("timestamp", DESCENDING)], name="type_ts")]
    )
    gridfs.GridFSBucket(db, bucket_name="model_files").upload_from_stream(
        "v1/arrays.npz", bytes(range(256)) * 1200, metadata={"version": "v1", "name": "arrays.npz"}
    )


def fingerprint(db: Db) -> dict[str, tuple[int, str]]:
    """Per collection: (document count, sha256 over the raw BSON of every document by _id)."""
    raw = CodecOptions(document_class=RawBSONDocument)
    out: dict[str, tuple[int, str]] = {}
    for name in sorted(db.list_collection_names()):
        docs = list(db.get_collection(name, codec_options=raw).find({}))
        keyed = sorted(docs, key=lambda d: encode({"k": d["_id"]}))
        sha = hashlib.sha256()
        for doc in keyed:
            sha.update(doc.raw)
        out[name] = (len(docs), sha.hexdigest())
    return out


def index_specs(db: Db) -> dict[str, list[tuple[str, tuple[tuple[str, Any], ...], bool]]]:
    out = {}
    for name in sorted(db.list_collection_names()):
        out[name] = sorted(
            (ix["name"], tuple(ix["key"].items()), bool(ix.get("unique", False)))
            for ix in db[name].list_indexes()
        )
    return out
