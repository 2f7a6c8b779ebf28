"""Model versions: a document per version plus its artefact files in GridFS.

Artefacts are the files a model's ``save`` wrote (``meta.json``, ``arrays.npz``, a
``.keras`` file...) plus ``embeddings.npz`` (user/item ids and vectors) and
``serving.npz`` (trending counts, neighbour lists). The active version is a single
small document in ``service_state`` so every replica can poll it cheaply.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gridfs
import numpy as np
from pymongo import DESCENDING
from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import literal
from fastinsight.storage.mongo.schema import MODEL_VERSIONS, SETTINGS_STATE

log = logging.getLogger(__name__)

BUCKET = "model_files"
ACTIVE_KEY = "active_model"
EMBEDDINGS_FILE = "embeddings.npz"


@dataclass(frozen=True)
class Embeddings:
    """The learned vectors of one model version, with string ids outside."""

    version: str
    user_ids: np.ndarray
    user_vectors: np.ndarray
    item_ids: np.ndarray
    item_vectors: np.ndarray


class ModelVersionRepository:
    def __init__(self, db: Database[Document]) -> None:
        self.db = db
        self.col = db[MODEL_VERSIONS]
        self.state = db[SETTINGS_STATE]
        self.fs = gridfs.GridFSBucket(db, bucket_name=BUCKET)

    # ---- writing --------------------------------------------------------------------
    def save(self, doc: Document, artefacts: Path) -> None:
        """Upload every file under ``artefacts`` and then insert the version document."""
        version = doc["version"]
        files: list[dict[str, Any]] = []
        for path in sorted(p for p in artefacts.rglob("*") if p.is_file()):
            name = path.relative_to(artefacts).as_posix()
            with path.open("rb") as fh:
                file_id = self.fs.upload_from_stream(
                    f"{version}/{name}", fh, metadata={"version": version, "name": name}
                )
            files.append({"name": name, "file_id": file_id, "bytes": path.stat().st_size})
        self.col.insert_one({**doc, "_id": version, "files": files})

    def set_status(self, version: str, status: str, **fields: Any) -> None:
        self.col.update_one({"_id": literal(version)}, {"$set": {"status": status, **fields}})

    def activate(self, version: str, reason: str = "") -> None:
        now = datetime.now(UTC)
        self.state.replace_one(
            {"_id": ACTIVE_KEY},
            {"_id": ACTIVE_KEY, "version": version, "activated_at": now, "reason": reason},
            upsert=True,
        )
        log.info("model version %s activated (%s)", version, reason or "no reason given")

    def delete(self, version: str) -> None:
        doc = self.get(version)
        if doc is None:
            return
        for f in doc.get("files", []):
            try:
                self.fs.delete(f["file_id"])
            except gridfs.errors.NoFile:
                log.warning("artefact %s of %s already gone", f["name"], version)
        self.col.delete_one({"_id": literal(version)})

    # ---- reading --------------------------------------------------------------------
    def get(self, version: str) -> Document | None:
        return self.col.find_one({"_id": literal(version)})

    def list(self, limit: int = 50) -> list[Document]:
        return list(self.col.find({}, {"files": 0}).sort("created_at", DESCENDING).limit(limit))

    def active(self) -> Document | None:
        return self.state.find_one({"_id": ACTIVE_KEY})

    def active_version(self) -> str | None:
        doc = self.active()
        return str(doc["version"]) if doc else None

    def download(self, version: str, target: Path) -> Path:
        """Write the version's artefacts under ``target`` and return it."""
        doc = self.get(version)
        if doc is None:
            raise KeyError(version)
        for f in doc.get("files", []):
            path = target / f["name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                self.fs.download_to_stream(f["file_id"], fh)
        return target

    def read_array_file(self, version: str, name: str) -> dict[str, np.ndarray]:
        doc = self.get(version)
        if doc is None:
            raise KeyError(version)
        for f in doc.get("files", []):
            if f["name"] == name:
                buf = io.BytesIO()
                self.fs.download_to_stream(f["file_id"], buf)
                buf.seek(0)
                with np.load(buf, allow_pickle=False) as npz:
                    return {k: npz[k] for k in npz.files}
        raise KeyError(f"{version} has no {name}")

    def load_embeddings(self, version: str | None = None) -> Embeddings | None:
        """Embeddings of ``version`` (default: the active one); None if it has none."""
        version = version or self.active_version()
        if version is None:
            return None
        try:
            arrays = self.read_array_file(version, EMBEDDINGS_FILE)
        except KeyError:
            return None
        return Embeddings(version, arrays["user_ids"], arrays["user_vectors"],
                          arrays["item_ids"], arrays["item_vectors"])
