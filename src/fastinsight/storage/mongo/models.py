"""Model versions: a document per version plus its artefact files as chunked documents.

Artefacts are the files a model's ``save`` wrote (``meta.json``, one ``.npy`` per array,
a ``.keras`` file...) plus ``embeddings.npz`` (user/item ids and vectors), the serving
arrays (``serving/*.npy``: id maps, trending counts, dislikes) and the per-user candidate
lists (``candidates/*.npy``); versions stored before kept those in ``arrays.npz``,
``serving.npz`` and ``candidates.npz``. Each file is stored in 4 MB chunks whose
``_id`` is ``<version>/<name>#<n>``, read back one ``_id`` at a time and checked against
its SHA-256. (GridFS was the first choice; on FerretDB its chunk cursor returns a whole
large file in one reply, which exceeds the server's own 48 MB message limit.) The
active version is a single small document in ``service_state`` so every replica can
poll it cheaply.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
from bson.binary import Binary
from pymongo import DESCENDING
from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import literal
from fastinsight.storage.mongo.schema import MODEL_VERSIONS, SETTINGS_STATE

log = logging.getLogger(__name__)

CHUNKS = "model_chunks"
CHUNK_BYTES = 4 * 1024 * 1024
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
        self.chunks = db[CHUNKS]

    # ---- writing --------------------------------------------------------------------
    def save(self, doc: Document, artefacts: Path) -> None:
        """Upload every file under ``artefacts`` and then insert the version document."""
        version = doc["version"]
        files: list[dict[str, Any]] = []
        now = datetime.now(UTC)
        for path in sorted(p for p in artefacts.rglob("*") if p.is_file()):
            name = path.relative_to(artefacts).as_posix()
            digest = hashlib.sha256()
            n = 0
            with path.open("rb") as fh:
                while block := fh.read(CHUNK_BYTES):
                    digest.update(block)
                    self.chunks.insert_one({
                        "_id": _chunk_id(version, name, n), "version": version, "name": name,
                        "n": n, "data": Binary(block), "uploaded_at": now,
                    })
                    n += 1
            files.append({"name": name, "chunks": n, "bytes": path.stat().st_size,
                          "sha256": digest.hexdigest()})
        self.col.insert_one({**doc, "_id": version, "files": files})

    def set_status(self, version: str, status: str, **fields: Any) -> None:
        self.col.update_one({"_id": literal(version)}, {"$set": {"status": status, **fields}})

    def set_fields(self, version: str, **fields: Any) -> None:
        self.col.update_one({"_id": literal(version)}, {"$set": fields})

    def activate(self, version: str, reason: str = "") -> None:
        now = datetime.now(UTC)
        # Kept on the version too: the most recently active one besides the current is
        # the roll-back target, which version pruning keeps.
        self.col.update_one({"_id": literal(version)}, {"$set": {"last_activated_at": now}})
        self.state.replace_one(
            {"_id": ACTIVE_KEY},
            {"_id": ACTIVE_KEY, "version": version, "activated_at": now, "reason": reason},
            upsert=True,
        )
        log.info("model version %s activated (%s)", version, reason or "no reason given")

    def delete(self, version: str) -> None:
        self.col.delete_one({"_id": literal(version)})
        self.chunks.delete_many({"version": literal(version)})

    def delete_orphan_chunks(self, known: set[str], older_than: datetime) -> int:
        """Chunks of versions that have no document (an interrupted save), older than a cutoff."""
        orphans = {
            c["version"] for c in self.chunks.find({}, {"version": 1, "uploaded_at": 1})
            if c["version"] not in known and _aware(c["uploaded_at"]) < older_than
        }
        return sum(int(self.chunks.delete_many({"version": v}).deleted_count) for v in orphans)

    # ---- reading --------------------------------------------------------------------
    def get(self, version: str) -> Document | None:
        return self.col.find_one({"_id": literal(version)})

    def list(self, limit: int | None = 50) -> list[Document]:
        """Version documents (without the file list), newest first; ``limit=None``: all."""
        cursor = self.col.find({}, {"files": 0}).sort("created_at", DESCENDING)
        return list(cursor.limit(limit) if limit is not None else cursor)

    def newest_ready(self, algorithm: str) -> str | None:
        """The newest version of ``algorithm`` that passed its checks, or None."""
        docs = self.col.find({"algorithm": literal(algorithm), "status": "ready"}, {"version": 1})
        newest = docs.sort("created_at", DESCENDING).limit(1)
        return next((str(d["version"]) for d in newest), None)

    def active(self) -> Document | None:
        return self.state.find_one({"_id": ACTIVE_KEY})

    def active_version(self) -> str | None:
        doc = self.active()
        return str(doc["version"]) if doc else None

    def download(self, version: str, target: Path, doc: Document | None = None) -> Path:
        """Write the version's artefacts under ``target`` and return it (``doc``: the
        version document, when the caller has read it already)."""
        doc = doc if doc is not None else self.get(version)
        if doc is None:
            raise KeyError(version)
        for f in doc.get("files", []):
            path = target / f["name"]
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as fh:
                self._read_file(version, f, fh)
        return target

    def _read_file(self, version: str, entry: dict[str, Any], out: IO[bytes]) -> None:
        digest = hashlib.sha256()
        for block in self._blocks(version, entry):
            digest.update(block)
            out.write(block)
        if digest.hexdigest() != entry["sha256"]:
            raise ValueError(f"artefact {entry['name']} of {version} is corrupt (checksum mismatch)")

    def _blocks(self, version: str, entry: dict[str, Any]) -> Iterator[bytes]:
        for n in range(int(entry["chunks"])):
            chunk = self.chunks.find_one({"_id": _chunk_id(version, entry["name"], n)})
            if chunk is None:
                raise ValueError(f"artefact {entry['name']} of {version} is missing chunk {n}")
            yield bytes(chunk["data"])

    def read_array_file(self, version: str, name: str) -> dict[str, np.ndarray]:
        doc = self.get(version)
        if doc is None:
            raise KeyError(version)
        for f in doc.get("files", []):
            if f["name"] == name:
                buf = io.BytesIO()
                self._read_file(version, f, buf)
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


def _chunk_id(version: str, name: str, n: int) -> str:
    return f"{version}/{name}#{n:05d}"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
