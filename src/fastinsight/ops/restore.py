"""``fastinsight restore``: load a verified backup archive into a database.

Two streaming passes over the archive: the first checks every checksum and document
count (nothing is written if it fails), the second decodes every document and inserts
it as raw BSON (``insert_many`` in batches) into a staging database, then recreates the
indexes there from the metadata files. Only when all of that is complete and counted
are the collections switched into the target (:mod:`fastinsight.ops.staging`), so a
refused document, a failed index or a dead server leaves the target as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bson import decode, encode, json_util
from bson.errors import InvalidBSON
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel, MongoClient
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from fastinsight.errors import Conflict
from fastinsight.ops.archive import (
    ArchiveError,
    CollectionEntry,
    Manifest,
    iter_bson,
    open_archive,
    read_manifest,
    verify_archive,
)
from fastinsight.ops.maintenance import FLAG_ID, STATE_COLLECTION
from fastinsight.ops.staging import (
    JOURNAL,
    Staging,
    ensure_indexes,
    index_models,
    recover_interrupted,
    sigterm_raises,
)
from fastinsight.storage.mongo.doclock import DOCUMENT_LOCKS

log = logging.getLogger(__name__)

JOBS_COLLECTION = "jobs"
OPERATIONAL_COLLECTIONS = frozenset({JOBS_COLLECTION, "job_locks", DOCUMENT_LOCKS})

Document = dict[str, Any]


class TargetNotEmpty(Conflict):
    code = "target_not_empty"


@dataclass
class RestoreResult:
    archive: Path
    source_db: str
    target_db: str
    dry_run: bool
    manifest: Manifest
    inserted: dict[str, int] = field(default_factory=dict)
    indexes: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def documents(self) -> int:
        return sum(self.inserted.values())


def non_empty_collections(db: Database[Document], *, operational: bool = False) -> list[str]:
    """Data collections of ``db`` holding at least one document (one ``limit 1`` read each).

    The job history and locks do not count unless ``operational``: a restore started as
    a job writes its own record and lock into the (otherwise empty) database it
    restores, and a document lock is at most a few seconds old.
    """
    return sorted(
        name
        for name in db.list_collection_names()
        if (operational or name not in OPERATIONAL_COLLECTIONS)
        and db[name].find_one({}, projection={"_id": 1}) is not None
    )


def restore_archive(
    client: MongoClient[Document],
    archive: Path,
    *,
    target_db: str | None = None,
    drop: bool = False,
    dry_run: bool = False,
    batch_size: int = 1000,
    recount: bool = False,
) -> RestoreResult:
    """Restore ``archive`` into ``target_db`` (default: the database it was taken from).

    Raises :class:`ArchiveError` if the archive fails verification or the database
    refuses any of its documents or indexes, and :class:`TargetNotEmpty` if the target
    holds documents and ``drop`` is false. The archive is loaded into a staging database
    first and checked there; the target changes only once that is complete, and a
    failure from then on rolls it back (:mod:`fastinsight.ops.staging`). With ``drop``
    the target's collections are replaced and those the archive lacks are dropped.
    ``dry_run`` does the whole staging load and its checks, then discards it, without
    writing to the target. The acknowledged insert counts are always compared with the
    manifest; ``recount`` also counts every restored collection on the server (a full
    scan per collection on FerretDB).
    """
    started = time.perf_counter()
    manifest = verify_archive(archive)
    target = client[target_db or manifest.database]
    result = RestoreResult(
        archive=archive,
        source_db=manifest.database,
        target_db=target.name,
        dry_run=dry_run,
        manifest=manifest,
        phases={"verify": time.perf_counter() - started},
    )
    if any(c.name == JOURNAL for c in manifest.collections):
        raise ArchiveError(f"the archive holds a collection named {JOURNAL!r}, reserved for restores")
    with sigterm_raises():
        recover_interrupted(client, target.name, dry_run=dry_run)
        occupied = non_empty_collections(target)
        if occupied and not drop:
            raise TargetNotEmpty(
                f"target database {target.name!r} is not empty ({', '.join(occupied[:10])}); "
                "pass --drop to replace it"
            )
        staging = Staging(client, target.name)
        staging.start(dry_run=dry_run)
        try:
            staged = _load(staging.db, archive, manifest, batch_size, staging.beat)
            result.inserted, result.indexes = staged.inserted, staged.indexes
            result.phases.update(insert=staged.insert_seconds, indexes=staged.index_seconds)
            if not dry_run:
                switching = time.perf_counter()
                # Without --drop, records already there (a restore job's own) stay.
                kept = {} if drop or not recount else {
                    n: target[n].count_documents({}) for n in non_empty_collections(
                        target, operational=True) if n in staged.inserted}

                def replay(prepare: Callable[[str], None]) -> None:
                    _load(target, archive, manifest, batch_size, staging.beat, prepare)

                def check() -> None:
                    if recount:
                        counting = time.perf_counter()
                        _check_counts(target, {
                            n: c + kept.get(n, 0) for n, c in staged.inserted.items()})
                        result.phases["recount"] = time.perf_counter() - counting

                staging.switch_in(list(staged.inserted), drop=drop, batch_size=batch_size,
                                  replay=replay, check=check)
                result.phases["switch"] = (
                    time.perf_counter() - switching - result.phases.get("recount", 0.0))
        finally:
            staging.discard()
    result.seconds = time.perf_counter() - started
    log.info(
        "%s %s into %s: %d documents in %.1fs",
        "checked (dry run)" if dry_run else "restored",
        archive,
        target.name,
        result.documents,
        result.seconds,
    )
    return result


@dataclass
class _Loaded:
    inserted: dict[str, int] = field(default_factory=dict)
    indexes: dict[str, list[str]] = field(default_factory=dict)
    insert_seconds: float = 0.0
    index_seconds: float = 0.0


def _load(
    db: Database[Document],
    archive: Path,
    manifest: Manifest,
    batch_size: int,
    beat: Callable[[], None],
    prepare: Callable[[str], None] = lambda name: None,
) -> _Loaded:
    """Stream the archive into ``db``: every collection with its options, documents and
    indexes, all checked. ``prepare(name)`` runs before a collection is first written.

    The staging load and the replay into the target run this same code on the same
    bytes, so what the staging database accepted the target accepts too; only the
    server failing in between can differ, and the switch rolls that back.
    """
    loading = time.perf_counter()
    by_bson: dict[str, CollectionEntry] = {c.bson: c for c in manifest.collections}
    by_meta: dict[str, CollectionEntry] = {c.metadata: c for c in manifest.collections}
    pending: dict[str, list[IndexModel]] = {}
    out = _Loaded()
    left_out: dict[str, int] = {}
    with open_archive(archive) as tar:
        read_manifest(tar, archive)
        for member in tar:
            if member.name not in by_meta and member.name not in by_bson:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                raise ArchiveError(f"member {member.name!r} is not a regular file")
            if member.name in by_meta:
                entry = by_meta[member.name]
                metadata = json_util.loads(handle.read())
                prepare(entry.name)
                if entry.name not in db.list_collection_names():
                    try:
                        db.create_collection(entry.name, **dict(metadata.get("options") or {}))
                    except PyMongoError as exc:
                        raise ArchiveError(
                            f"{entry.name}: the database refused the collection: {exc}") from exc
                pending[entry.name] = index_models(metadata)
            else:
                entry = by_bson[member.name]
                out.inserted[entry.name], left_out[entry.name] = _insert_stream(
                    db, entry.name, handle, batch_size, beat)
    loaded = time.perf_counter()
    out.insert_seconds = loaded - loading
    for name, models in pending.items():
        try:
            out.indexes[name] = ensure_indexes(db, name, models)
        except (PyMongoError, RuntimeError) as exc:
            raise ArchiveError(f"could not recreate indexes of {name}: {exc}") from exc
    out.index_seconds = time.perf_counter() - loaded
    for entry in manifest.collections:
        # The manifest's own totals, not only each file's: if they disagree with what
        # the database acknowledged, the dump was broken and the restore is not complete.
        stored = out.inserted.get(entry.name, 0) + left_out.get(entry.name, 0)
        if stored != entry.documents:
            raise ArchiveError(
                f"{entry.name}: inserted {stored} documents, the manifest lists {entry.documents}"
            )
    return out


def _restored_form(name: str, raw: bytes, doc: Document) -> RawBSONDocument | None:
    """The document as it goes into the database, or ``None`` to leave it out."""
    if name == STATE_COLLECTION and doc.get("_id") == FLAG_ID:
        return None  # a backup taken with writes paused contains the pause flag itself
    if name == JOBS_COLLECTION and doc.get("status") == "running":
        # It is not running here: nothing resumes a job from a backup.
        return RawBSONDocument(encode({
            **doc, "status": "failed", "finished_at": datetime.now(UTC), "restored": True,
            "error": "interrupted: restored from a backup taken while it ran",
        }))
    return RawBSONDocument(raw)


def _insert_stream(
    db: Database[Document], name: str, handle: Any, batch_size: int, beat: Callable[[], None]
) -> tuple[int, int]:
    """Decode-check and insert one ``.bson`` stream; returns (inserted, left out)."""
    collection = db[name]
    batch: list[RawBSONDocument] = []
    inserted = left_out = 0

    def flush() -> None:
        nonlocal inserted, batch
        try:
            collection.insert_many(batch, ordered=True)
        except BulkWriteError as exc:
            raise _refused(name, inserted + left_out, exc) from exc
        inserted += len(batch)
        batch = []
        beat()

    for position, raw in enumerate(iter_bson(handle), start=1):
        try:
            doc = decode(raw)
        except (InvalidBSON, ValueError) as exc:
            raise ArchiveError(f"{name}: document {position} does not decode: {exc}") from exc
        restored = _restored_form(name, raw, doc)
        if restored is None:
            left_out += 1
            continue
        batch.append(restored)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    log.info("restore %s.%s: %d documents", db.name, name, inserted)
    return inserted, left_out


def _refused(name: str, before: int, exc: BulkWriteError) -> ArchiveError:
    errors: list[Document] = exc.details.get("writeErrors", [])
    if not errors:
        return ArchiveError(f"{name}: the database refused a batch: {exc}")
    first = errors[0]
    op = first.get("op")
    doc_id = op.get("_id") if op is not None else None
    return ArchiveError(
        f"{name}: the database refused document {before + int(first.get('index', 0)) + 1} "
        f"(_id {doc_id!r}): {first.get('errmsg', exc)}; the target was not changed"
    )


def _check_counts(target: Database[Document], expected: dict[str, int]) -> None:
    for name, want in expected.items():
        count = target[name].count_documents({})
        if count != want:
            raise ArchiveError(f"{name}: {count} documents after restore, expected {want}")
