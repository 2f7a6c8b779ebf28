"""Insight snapshots and customer segments, stored so every read is by ``_id``.

``insight_snapshots`` holds one small ``current`` document naming the snapshot being
served, plus each snapshot's arrays as ``.npz`` bytes split over documents of at most
``CHUNK_BYTES`` (``<snapshot>:<part>:<n>``), and per-model-version coverage documents
(``coverage:<version>``). A refresh writes a complete new snapshot first, then swaps
``current`` (one replace by ``_id``), then deletes the previous snapshot's chunks, so a
reader sees either the old or the new snapshot, never a mix.

``segments`` holds one manifest per model version (``_id`` = the version: the segments
with their labels, statistics and campaign suggestions) and the member lists in binary
chunks (``<version>/<build>/<segment>/<n>``), so a page of members is one or two reads by
``_id`` (one binary field decodes far faster than thousands of array elements).

The scan helpers project only the fields the rollups need: on the FerretDB development
server every non-``_id`` query reads the whole collection, so insights read each
collection once per refresh and never per request.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime

import numpy as np
from bson import Binary
from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import literal
from fastinsight.storage.mongo.schema import FRESH_INTERACTIONS, INTERACTIONS, ITEMS

log = logging.getLogger(__name__)

INSIGHT_SNAPSHOTS = "insight_snapshots"
SEGMENTS = "segments"
CURRENT_KEY = "current"
CHUNK_BYTES = 8 * 1024 * 1024
MEMBERS_PER_CHUNK = 5_000

# Only ``_id`` lookups are used on these two collections: no index in schema.INDEXES.

SCAN_FIELDS = {"_id": 0, "user_id": 1, "item_id": 1, "type": 1, "day": 1}
ITEM_FIELDS = {"_id": 1, "title": 1, "categories": 1, "hidden": 1}


def encode_strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as one UTF-8 byte array plus end offsets (no pickle, no fixed-width padding)."""
    encoded = [v.encode("utf-8") for v in values]
    ends = np.cumsum([len(b) for b in encoded], dtype=np.int64) if encoded else np.zeros(0, np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), ends


def decode_strings(data: np.ndarray, ends: np.ndarray) -> list[str]:
    raw = bytes(data.tobytes())
    out: list[str] = []
    start = 0
    for end in ends.tolist():
        out.append(raw[start:end].decode("utf-8"))
        start = end
    return out


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **dict(arrays))  # type: ignore[arg-type]  # numpy's stub types **kwds oddly
    return buf.getvalue()


class InsightScans:
    """The two collection scans a refresh makes, plus the small real-time collection."""

    def __init__(self, db: Database[Document]) -> None:
        self.db = db

    def interactions(self, batch_size: int = 10_000) -> Iterator[Document]:
        yield from self.db[INTERACTIONS].find({}, SCAN_FIELDS, batch_size=batch_size)

    def items(self) -> Iterator[Document]:
        yield from self.db[ITEMS].find({}, ITEM_FIELDS, batch_size=10_000)

    def fresh_users_of_items(self, item_ids: list[str]) -> set[str]:
        """Users with real-time events on these items not yet folded into a snapshot.

        ``fresh_interactions`` is truncated by every training run, so it stays small.
        """
        if not item_ids:
            return set()
        query: Document = (
            {"item_id": literal(item_ids[0])} if len(item_ids) == 1
            else {"item_id": {"$in": [literal(i) for i in item_ids]}}
        )
        return {str(d["user_id"]) for d in self.db[FRESH_INTERACTIONS].find(query, {"user_id": 1})}


class SnapshotStore:
    def __init__(self, db: Database[Document]) -> None:
        self.col = db[INSIGHT_SNAPSHOTS]

    # ---- writing --------------------------------------------------------------------
    def write_part(self, snapshot_id: str, part: str, arrays: Mapping[str, np.ndarray]) -> int:
        """Store arrays as npz bytes over as many chunk documents as needed; returns chunks."""
        data = _npz_bytes(arrays)
        chunks = max(1, -(-len(data) // CHUNK_BYTES))
        for n in range(chunks):
            piece = data[n * CHUNK_BYTES:(n + 1) * CHUNK_BYTES]
            self.col.replace_one(
                {"_id": f"{snapshot_id}:{part}:{n}"},
                {"_id": f"{snapshot_id}:{part}:{n}", "snapshot_id": snapshot_id, "part": part,
                 "data": Binary(piece)},
                upsert=True,
            )
        return chunks

    def publish(self, meta: Document) -> str | None:
        """Make ``meta`` (with ``snapshot_id`` and ``parts``) current; returns the previous id."""
        previous = self.current()
        self.col.replace_one({"_id": CURRENT_KEY}, {**meta, "_id": CURRENT_KEY}, upsert=True)
        return str(previous["snapshot_id"]) if previous else None

    def delete_snapshot(self, snapshot_id: str, parts: Mapping[str, int]) -> None:
        for part, chunks in parts.items():
            for n in range(chunks):
                self.col.delete_one({"_id": f"{snapshot_id}:{part}:{n}"})

    def save_coverage(self, version: str, doc: Document) -> None:
        key = f"coverage:{version}"
        self.col.replace_one({"_id": key}, {**doc, "_id": key, "version": version}, upsert=True)

    # ---- reading --------------------------------------------------------------------
    def current(self) -> Document | None:
        return self.col.find_one({"_id": CURRENT_KEY})

    def read_part(self, snapshot_id: str, part: str, chunks: int) -> dict[str, np.ndarray]:
        pieces: list[bytes] = []
        for n in range(chunks):
            doc = self.col.find_one({"_id": f"{snapshot_id}:{part}:{n}"})
            if doc is None:
                raise KeyError(f"snapshot {snapshot_id} lost chunk {part}:{n}")
            pieces.append(bytes(doc["data"]))
        with np.load(io.BytesIO(b"".join(pieces)), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}

    def coverage(self, version: str) -> Document | None:
        return self.col.find_one({"_id": f"coverage:{literal(version)}"})


class SegmentStore:
    def __init__(self, db: Database[Document]) -> None:
        self.col = db[SEGMENTS]

    def save(self, manifest: Document, members: list[tuple[list[str], np.ndarray]]) -> None:
        """Members first, manifest last: a manifest never points at missing chunks."""
        version = str(manifest["model_version"])
        old = self.manifest(version)
        chunks: dict[str, int] = {}
        for seg, (user_ids, scores) in zip(manifest["segments"], members, strict=True):
            seg_id = str(seg["segment_id"])
            count = max(1, -(-len(user_ids) // MEMBERS_PER_CHUNK))
            for n in range(count):
                lo, hi = n * MEMBERS_PER_CHUNK, (n + 1) * MEMBERS_PER_CHUNK
                key = f"{version}/{manifest['build_id']}/{seg_id}/{n}"
                data, ends = encode_strings(user_ids[lo:hi])
                packed = _npz_bytes({"data": data, "ends": ends,
                                     "scores": np.asarray(scores[lo:hi], dtype=np.float32)})
                self.col.replace_one({"_id": key}, {"_id": key, "members": Binary(packed)},
                                     upsert=True)
            chunks[seg_id] = count
        self.col.replace_one({"_id": version}, {**manifest, "_id": version, "chunks": chunks},
                             upsert=True)
        if old is not None:
            self._delete_chunks(version, old)

    def _delete_chunks(self, version: str, manifest: Document) -> None:
        for seg_id, count in dict(manifest.get("chunks", {})).items():
            for n in range(int(count)):
                self.col.delete_one({"_id": f"{version}/{manifest['build_id']}/{seg_id}/{n}"})

    def manifest(self, version: str) -> Document | None:
        return self.col.find_one({"_id": literal(version)})

    def members(
        self, manifest: Document, segment_id: str, offset: int, limit: int
    ) -> tuple[list[str], list[float]]:
        """Members ``offset .. offset+limit`` (most typical first) of one segment."""
        version, build = str(manifest["_id"]), manifest["build_id"]
        users: list[str] = []
        scores: list[float] = []
        n = offset // MEMBERS_PER_CHUNK
        skip = offset - n * MEMBERS_PER_CHUNK
        count = int(dict(manifest.get("chunks", {})).get(segment_id, 0))
        while len(users) < limit and n < count:
            doc = self.col.find_one({"_id": f"{version}/{build}/{literal(segment_id)}/{n}"})
            if doc is None:
                break
            with np.load(io.BytesIO(bytes(doc["members"])), allow_pickle=False) as npz:
                users.extend(decode_strings(npz["data"], npz["ends"])[skip:])
                scores.extend(round(float(v), 5) for v in npz["scores"][skip:].tolist())
            skip, n = 0, n + 1
        return users[:limit], scores[:limit]

    def delete(self, version: str) -> None:
        doc = self.manifest(version)
        if doc is not None:
            self._delete_chunks(version, doc)
            self.col.delete_one({"_id": literal(version)})


def snapshot_id_for(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S%f")


def forget_model_version(db: Database[Document], version: str) -> None:
    """Drop what insights derived from a model version (segments, coverage); call it when
    the version itself is deleted."""
    SegmentStore(db).delete(version)
    db[INSIGHT_SNAPSHOTS].delete_one({"_id": f"coverage:{literal(version)}"})
