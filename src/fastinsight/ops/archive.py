"""Backup archive format: a mongodump directory tree plus a checksum manifest, as .tar.gz.

Layout inside the archive (the manifest comes first so a reader can check everything
while streaming)::

    manifest.json                    format, source database, per-file sha256/bytes/documents
    <db>/<collection>.metadata.json  indexes and options, canonical extended JSON (mongodump's)
    <db>/<collection>.bson           concatenated BSON documents (mongodump's)

Extracted, the ``<db>`` directory is what ``mongorestore --dir`` expects.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
import tarfile
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from fastinsight.errors import FastInsightError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FORMAT: Final = "fastinsight-dump/1"
ARCHIVE_PREFIX = "fastinsight-"
ARCHIVE_SUFFIX = ".tar.gz"
CHUNK = 1024 * 1024
MAX_BSON_DOCUMENT = 48 * 1024 * 1024
_SAFE_NAME = re.compile(r"^[^/\\\x00]+/[^/\\\x00]+\.(bson|metadata\.json)$")
_INT32 = struct.Struct("<i")


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class ArchiveError(FastInsightError):
    """The archive is unreadable, incomplete or does not match its manifest."""

    code = "archive_invalid"
    status = 422


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    sha256: str
    bytes: int
    documents: int | None = None


class CollectionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    documents: int
    bson: str
    metadata: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["fastinsight-dump/1"] = FORMAT
    database: str
    started_at: datetime
    finished_at: datetime
    tool: Literal["python", "mongodump"]
    consistency: Literal["writes-paused", "per-collection-cursor"]
    collections: list[CollectionEntry]
    files: list[FileEntry]

    @property
    def total_documents(self) -> int:
        return sum(c.documents for c in self.collections)

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise ArchiveError(f"{path} is not listed in the manifest")


def iter_bson(stream: Readable) -> Iterator[bytes]:
    """Yield the raw bytes of each BSON document in a concatenated stream.

    Checks the framing (length prefix, terminating NUL, no trailing garbage) without
    decoding, so it is cheap enough to run over every byte of a backup.
    """
    while True:
        head = stream.read(4)
        if not head:
            return
        if len(head) < 4:
            raise ArchiveError("truncated BSON: partial length prefix at end of file")
        (size,) = _INT32.unpack(head)
        if size < 5 or size > MAX_BSON_DOCUMENT:
            raise ArchiveError(f"corrupt BSON: impossible document length {size}")
        body = stream.read(size - 4)
        if len(body) != size - 4:
            raise ArchiveError("truncated BSON: document cut short at end of file")
        if body[-1] != 0:
            raise ArchiveError("corrupt BSON: document does not end with a NUL byte")
        yield head + body


class _HashingReader:
    """Wraps a stream and hashes everything read through it."""

    def __init__(self, inner: Readable) -> None:
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1, /) -> bytes:
        data = self.inner.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


def hash_stream(stream: Readable, *, count_bson: bool) -> FileEntry:
    """sha256, size and (for ``.bson``) document count of a stream, read to its end."""
    reader = _HashingReader(stream)
    documents: int | None = None
    if count_bson:
        documents = 0
        for _ in iter_bson(reader):
            documents += 1
    else:
        while reader.read(CHUNK):
            pass
    return FileEntry(path="", sha256=reader.sha.hexdigest(), bytes=reader.size, documents=documents)


def check_member_name(name: str) -> None:
    if name != MANIFEST_NAME and not _SAFE_NAME.match(name):
        raise ArchiveError(f"unexpected member {name!r} (absolute path, traversal or unknown kind)")
    if ".." in name.split("/"):
        raise ArchiveError(f"unsafe member name {name!r}")


def open_archive(path: Path) -> tarfile.TarFile:
    """Open for one streaming pass; a missing file or a non-gzip file is an ArchiveError."""
    if not path.is_file():
        raise ArchiveError(f"archive {path} does not exist")
    try:
        return tarfile.open(path, mode="r|gz")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"archive {path} is not a readable .tar.gz: {exc}") from exc


def read_manifest(tar: tarfile.TarFile, path: Path) -> Manifest:
    member = tar.next()
    if member is None or member.name != MANIFEST_NAME or not member.isfile():
        raise ArchiveError(f"archive {path} does not start with {MANIFEST_NAME}")
    handle = tar.extractfile(member)
    if handle is None:
        raise ArchiveError(f"{MANIFEST_NAME} in {path} is not a regular file")
    try:
        return Manifest.model_validate_json(handle.read())
    except ValidationError as exc:
        raise ArchiveError(f"{MANIFEST_NAME} in {path} is invalid: {exc}") from exc


def verify_archive(path: Path) -> Manifest:
    """Read the whole archive once and check every file against the manifest.

    Raises :class:`ArchiveError` on a gzip/tar error, an unknown or missing member, a
    checksum, size or document-count mismatch, or broken BSON framing.
    """
    try:
        with open_archive(path) as tar:
            manifest = read_manifest(tar, path)
            expected = {entry.path: entry for entry in manifest.files}
            seen: set[str] = set()
            manifest_members = 0
            for member in tar:
                # Iteration restarts at the first member, which read_manifest consumed.
                if member.name == MANIFEST_NAME:
                    manifest_members += 1
                    if manifest_members > 1:
                        raise ArchiveError(f"archive {path} holds more than one manifest")
                    continue
                check_member_name(member.name)
                if not member.isfile():
                    raise ArchiveError(f"member {member.name!r} is not a regular file")
                if member.name not in expected or member.name in seen:
                    raise ArchiveError(f"member {member.name!r} is not in the manifest or repeated")
                handle = tar.extractfile(member)
                assert handle is not None
                got = hash_stream(handle, count_bson=member.name.endswith(".bson"))
                want = expected[member.name]
                if (got.sha256, got.bytes, got.documents) != (
                    want.sha256,
                    want.bytes,
                    want.documents,
                ):
                    raise ArchiveError(
                        f"{member.name}: checksum/size/count mismatch "
                        f"(manifest sha256={want.sha256[:12]} bytes={want.bytes} "
                        f"docs={want.documents}; archive sha256={got.sha256[:12]} "
                        f"bytes={got.bytes} docs={got.documents})"
                    )
                seen.add(member.name)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"archive {path} is corrupt: {exc}") from exc
    missing = sorted(set(expected) - seen)
    if missing:
        raise ArchiveError(f"archive {path} is incomplete or corrupt: "
                           f"{len(missing)} file(s) missing: {missing[:5]}")
    log.info("verified %s: %d files, %d documents", path, len(seen), manifest.total_documents)
    return manifest
