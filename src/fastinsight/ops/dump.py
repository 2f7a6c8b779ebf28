"""``fastinsight backup``: dump a database to a verified, timestamped ``.tar.gz``.

Documents are streamed as raw BSON (no decode/encode round trip), so the ``.bson``
files are byte-for-byte what the server returned, exactly as mongodump writes them.
When ``mongodump`` is installed it can produce the tree instead (``tool="mongodump"``);
packing, manifest and verification are the same either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote, unquote, urlsplit
from uuid import UUID

from bson import json_util
from bson.codec_options import CodecOptions
from bson.json_util import CANONICAL_JSON_OPTIONS
from bson.raw_bson import RawBSONDocument
from pymongo.collection import Collection
from pymongo.database import Database

from fastinsight.ops.archive import (
    ARCHIVE_PREFIX,
    ARCHIVE_SUFFIX,
    MANIFEST_NAME,
    ArchiveError,
    CollectionEntry,
    FileEntry,
    Manifest,
    hash_stream,
    verify_archive,
)
from fastinsight.ops.maintenance import writes_paused
from fastinsight.ops.staging import sigterm_raises
from fastinsight.storage.mongo.doclock import DOCUMENT_LOCKS

log = logging.getLogger(__name__)

Document = dict[str, Any]
Tool = Literal["auto", "python", "mongodump"]
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME_RE = re.compile(r"^fastinsight-(?P<db>.+)-(?P<stamp>\d{8}T\d{6}Z)(-\d+)?\.tar\.gz$")
# Coordination state of running processes, not data: restoring a job lock would block
# that job kind on the restored system.
RUNTIME_COLLECTIONS = frozenset({"job_locks", DOCUMENT_LOCKS})
# mongodump runs at most this long (a hung server must not hold the backup job forever).
MONGODUMP_TIMEOUT = 6 * 3600.0
_RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)


@dataclass(frozen=True)
class DumpResult:
    archive: Path
    manifest: Manifest
    seconds: float
    archive_bytes: int


def collection_file_stem(name: str) -> str:
    """File-name form of a collection name (``/`` and other specials percent-encoded)."""
    return quote(name, safe="._-")


def _metadata(db: Database[Document], name: str, info: Mapping[str, Any]) -> str:
    indexes: list[Document] = []
    for index in db[name].list_indexes():
        spec = dict(index)
        spec.pop("ns", None)
        indexes.append(spec)
    meta: Document = {
        "indexes": indexes,
        "collectionName": name,
        "type": info.get("type", "collection"),
        "options": dict(info.get("options") or {}),
    }
    uuid = (info.get("info") or {}).get("uuid")
    if isinstance(uuid, UUID):
        meta["uuid"] = uuid.hex
    elif isinstance(uuid, bytes) and len(uuid) == 16:
        meta["uuid"] = uuid.hex()
    return json_util.dumps(meta, json_options=CANONICAL_JSON_OPTIONS)


def _dump_collection(db: Database[Document], name: str, target: Path, batch_size: int) -> FileEntry:
    sha = hashlib.sha256()
    count = 0
    size = 0
    collection = cast("Collection[RawBSONDocument]", db.get_collection(name, codec_options=_RAW))
    with target.open("wb") as out:
        for doc in collection.find({}, batch_size=batch_size):
            raw = doc.raw
            out.write(raw)
            sha.update(raw)
            size += len(raw)
            count += 1
    return FileEntry(path="", sha256=sha.hexdigest(), bytes=size, documents=count)


def _dump_python(
    db: Database[Document], staging: Path, batch_size: int
) -> list[tuple[CollectionEntry, FileEntry, FileEntry]]:
    base = staging / db.name
    base.mkdir(parents=True)
    infos = {info["name"]: info for info in db.list_collections()}
    out: list[tuple[CollectionEntry, FileEntry, FileEntry]] = []
    for name in sorted(infos):
        if name.startswith("system.") or name in RUNTIME_COLLECTIONS:
            continue
        if infos[name].get("type") == "view":
            continue
        stem = collection_file_stem(name)
        meta_text = _metadata(db, name, infos[name]).encode()
        (base / f"{stem}.metadata.json").write_bytes(meta_text)
        started = time.perf_counter()
        bson_entry = _dump_collection(db, name, base / f"{stem}.bson", batch_size)
        log.info(
            "dumped %s.%s: %d docs in %.1fs",
            db.name,
            name,
            bson_entry.documents,
            time.perf_counter() - started,
        )
        meta_entry = hash_stream(io.BytesIO(meta_text), count_bson=False)
        out.append((_collection_entry(db.name, name, bson_entry), bson_entry, meta_entry))
    return out


def _collection_entry(db_name: str, name: str, bson_entry: FileEntry) -> CollectionEntry:
    stem = collection_file_stem(name)
    return CollectionEntry(
        name=name,
        documents=bson_entry.documents or 0,
        bson=f"{db_name}/{stem}.bson",
        metadata=f"{db_name}/{stem}.metadata.json",
    )


def _redact(text: str, uri: str) -> str:
    """``text`` without the password of ``uri`` (mongodump may echo the URI it was given)."""
    password = urlsplit(uri).password
    if password:
        for form in {password, quote(password, safe=""), unquote(password)}:
            text = text.replace(form, "***")
    return text


def _dump_mongodump(
    uri: str, db_name: str, staging: Path, timeout: float
) -> list[tuple[CollectionEntry, FileEntry, FileEntry]]:
    """Run mongodump with the URI in a ``--config`` file (mode 0600, deleted afterwards):
    on the command line its password would be readable by every local user (``ps``)."""
    binary = shutil.which("mongodump")
    if binary is None:
        raise ArchiveError("mongodump is not installed")
    fd, config_name = tempfile.mkstemp(prefix=".mongodump-", suffix=".yaml", dir=staging)
    config = Path(config_name)
    try:
        with os.fdopen(fd, "w") as fh:
            # A JSON string is a valid YAML double-quoted scalar.
            fh.write(f"uri: {json.dumps(uri)}\n")
        argv = [binary, f"--config={config}", f"--db={db_name}", f"--out={staging}"]
        argv += [f"--excludeCollection={name}" for name in sorted(RUNTIME_COLLECTIONS)]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, check=False, timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise ArchiveError(f"mongodump did not finish within {timeout:g}s; stopped") from exc
    finally:
        config.unlink(missing_ok=True)
    if proc.returncode != 0:
        stderr = _redact(proc.stderr[-2000:], uri)
        log.error("mongodump failed (%d): %s", proc.returncode, stderr)
        raise ArchiveError(f"mongodump failed ({proc.returncode}): {stderr}")
    out: list[tuple[CollectionEntry, FileEntry, FileEntry]] = []
    base = staging / db_name
    for bson_path in sorted(base.glob("*.bson")):
        stem = bson_path.name[: -len(".bson")]
        with bson_path.open("rb") as fh:
            bson_entry = hash_stream(fh, count_bson=True)
        meta_path = base / f"{stem}.metadata.json"
        with meta_path.open("rb") as fh:
            meta_entry = hash_stream(fh, count_bson=False)
        meta = json_util.loads(meta_path.read_text())
        name = str(meta.get("collectionName", stem))
        out.append((_collection_entry(db_name, name, bson_entry), bson_entry, meta_entry))
    return out


def archive_name(db_name: str, when: datetime, directory: Path) -> Path:
    stem = f"{ARCHIVE_PREFIX}{db_name}-{when.astimezone(UTC).strftime(_STAMP)}"
    candidate = directory / f"{stem}{ARCHIVE_SUFFIX}"
    n = 2
    while candidate.exists():
        candidate = directory / f"{stem}-{n}{ARCHIVE_SUFFIX}"
        n += 1
    return candidate


def _pack(staging: Path, manifest: Manifest, target: Path, compresslevel: int) -> None:
    partial = target.with_name(f".{target.name}.partial")
    manifest_bytes = manifest.model_dump_json(indent=1).encode()
    try:
        with tarfile.open(partial, mode="w:gz", compresslevel=compresslevel) as tar:
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size = len(manifest_bytes)
            info.mtime = int(manifest.finished_at.timestamp())
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(manifest_bytes))
            for coll in manifest.collections:
                for rel in (coll.metadata, coll.bson):
                    tar.add(staging / rel, arcname=rel, recursive=False)
        with partial.open("rb") as fh:
            os.fsync(fh.fileno())
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)


def dump_database(
    db: Database[Document],
    out_dir: Path,
    *,
    uri: str = "",
    tool: Tool = "auto",
    pause_writes: bool = False,
    pause_grace_seconds: float = 2.0,
    compresslevel: int = 6,
    batch_size: int = 2000,
    now: datetime | None = None,
    mongodump_timeout: float = MONGODUMP_TIMEOUT,
) -> DumpResult:
    """Dump every collection of ``db`` into ``out_dir/fastinsight-<db>-<UTC stamp>.tar.gz``.

    The archive is written under a temporary name, renamed when complete, then read back
    and checked against its manifest; a failed check deletes it and raises. mongodump is
    stopped after ``mongodump_timeout`` seconds.
    """
    if tool == "auto":
        tool = "mongodump" if shutil.which("mongodump") and uri else "python"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    started_at = now or datetime.now(UTC)
    staging = Path(tempfile.mkdtemp(prefix=".dump-", dir=out_dir))
    try:
        if pause_writes:
            # SIGTERM (a job's timeout) raises, so the pause is always lifted on the way out.
            with sigterm_raises(), writes_paused(db, "backup", grace_seconds=pause_grace_seconds):
                entries = _run_dump(db, staging, tool, uri, batch_size, mongodump_timeout)
        else:
            entries = _run_dump(db, staging, tool, uri, batch_size, mongodump_timeout)
        files: list[FileEntry] = []
        for coll, bson_entry, meta_entry in entries:
            files.append(meta_entry.model_copy(update={"path": coll.metadata}))
            files.append(bson_entry.model_copy(update={"path": coll.bson}))
        manifest = Manifest(
            database=db.name,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            tool=tool,
            consistency="writes-paused" if pause_writes else "per-collection-cursor",
            collections=[coll for coll, _, _ in entries],
            files=files,
        )
        target = archive_name(db.name, started_at, out_dir)
        _pack(staging, manifest, target, compresslevel)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        verify_archive(target)
    except ArchiveError:
        target.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    size = target.stat().st_size
    log.info(
        "backup %s: %d collections, %d documents, %d bytes in %.1fs",
        target,
        len(manifest.collections),
        manifest.total_documents,
        size,
        seconds,
    )
    return DumpResult(archive=target, manifest=manifest, seconds=seconds, archive_bytes=size)


def _run_dump(
    db: Database[Document], staging: Path, tool: Tool, uri: str, batch_size: int, timeout: float
) -> list[tuple[CollectionEntry, FileEntry, FileEntry]]:
    if tool == "mongodump":
        return _dump_mongodump(uri, db.name, staging, timeout)
    return _dump_python(db, staging, batch_size)


def archive_time(path: Path) -> datetime:
    """UTC time encoded in an archive's name (falls back to the file's mtime)."""
    match = _NAME_RE.match(path.name)
    if match:
        return datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def list_archives(directory: Path, db_name: str | None = None) -> list[Path]:
    """Archives in ``directory``, newest first (optionally only those of one database)."""
    if not directory.is_dir():
        return []
    found = [
        p
        for p in directory.glob(f"{ARCHIVE_PREFIX}*{ARCHIVE_SUFFIX}")
        if (m := _NAME_RE.match(p.name)) and (db_name is None or m["db"] == db_name)
    ]
    return sorted(found, key=lambda p: (archive_time(p), p.name), reverse=True)


def apply_retention(
    directory: Path,
    *,
    keep: int,
    keep_days: float | None,
    db_name: str | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> list[Path]:
    """Delete old archives; returns the deleted paths.

    An archive survives if it is one of the ``keep`` newest **or** younger than
    ``keep_days`` (so a burst of manual backups never removes yesterday's). With
    ``keep_days=None`` only the ``keep`` newest survive.
    """
    now = now or datetime.now(UTC)
    archives = list_archives(directory, db_name)
    cutoff = now - timedelta(days=keep_days) if keep_days is not None else None
    doomed = [p for i, p in enumerate(archives) if i >= keep and (cutoff is None or archive_time(p) < cutoff)]
    for path in doomed:
        log.info("retention: %s %s", "would delete" if dry_run else "deleting", path)
        if not dry_run:
            path.unlink(missing_ok=True)
    return doomed
