"""Bulk import: a file or an iterable, sent in batches, one merged per-row report.

A batch is a complete body of the import routes (CSV with its header, JSON Lines, or a
JSON array), so the server parses and checks each as it would a whole file. Row numbers
in the merged report count data rows of the whole source from 1, as the server counts
them in one file: blank lines are skipped, the CSV header is not counted.

CSV and JSON Lines are read as they are sent (memory holds one batch); a JSON array file
is read whole (use JSON Lines for big files). Each batch tells the server the number of
its first row (``first_row``): the server numbers rejections by it, and keys an
interaction without ``event_id`` or ``timestamp`` by its row number in the whole source,
so a batch sent again after a lost answer, or the whole file sent again, stores nothing
twice. The merged report lists the first ``REJECTED_SHOWN`` rejected rows and counts
them all, as the server does for one request.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

from pydantic import BaseModel

from fastinsight_client._call import Call, Route, encode_json, to_jsonable
from fastinsight_client.models import ImportReport
from fastinsight_client.ops.catalog import IMPORT_ITEMS, IMPORT_USERS
from fastinsight_client.ops.events import IMPORT_INTERACTIONS

Kind = Literal["users", "items", "interactions"]
Format = Literal["csv", "jsonl", "json"]
Source = str | os.PathLike[str] | IO[bytes] | Iterable[Mapping[str, Any] | BaseModel]
ROUTES: dict[str, Route[ImportReport]] = {
    "users": IMPORT_USERS, "items": IMPORT_ITEMS, "interactions": IMPORT_INTERACTIONS}
MEDIA_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson", "json": "application/json"}
DEFAULT_BATCH = 1000
REJECTED_SHOWN = 1000


@dataclass(frozen=True)
class Batch:
    body: bytes
    format: Format
    rows: int
    first_row: int


@dataclass(frozen=True)
class ImportProgress:
    """Passed to ``on_progress`` after each batch: the report so far covers ``rows`` rows."""

    batches: int
    rows: int
    report: ImportReport


ProgressCallback = Callable[[ImportProgress], None]


def import_call(kind: Kind, batch: Batch, timeout: float | None) -> Call[ImportReport]:
    return ROUTES[kind].call(query={"first_row": batch.first_row}, content=batch.body,
                             content_type=MEDIA_TYPES[batch.format], timeout=timeout)


def format_of(name: str) -> Format:
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".json"):
        return "json"
    if lower.endswith(".csv"):
        return "csv"
    raise ValueError(f"cannot tell the format of {name!r}: pass format='csv', 'jsonl' or 'json'")


def batches(source: Source, fmt: Format | None = None,
            batch_size: int = DEFAULT_BATCH) -> Iterator[Batch]:
    """The source cut into bodies of at most ``batch_size`` rows."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if isinstance(source, str | os.PathLike):
        fmt = fmt or format_of(os.fspath(source))
        with ExitStack() as stack:
            yield from _file_batches(stack.enter_context(Path(source).open("rb")), fmt, batch_size)
        return
    if hasattr(source, "read"):
        stream = cast(IO[bytes], source)
        fmt = fmt or format_of(str(getattr(stream, "name", "")))
        yield from _file_batches(stream, fmt, batch_size)
        return
    yield from _object_batches(cast(Iterable[Any], source), batch_size)


def _file_batches(stream: IO[bytes], fmt: Format, size: int) -> Iterator[Batch]:
    if fmt == "csv":
        return _csv_batches(stream, size)
    if fmt == "jsonl":
        return _jsonl_batches(stream, size)
    return _object_batches(_json_array(stream), size)


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _object_batches(objects: Iterable[Any], size: int) -> Iterator[Batch]:
    first = 1
    for chunk in _chunks(objects, size):
        rows = [to_jsonable(o) for o in chunk]
        body = encode_json(rows)
        yield Batch(body, "json", len(rows), first)
        first += len(rows)


def _json_array(stream: IO[bytes]) -> list[Any]:
    value = json.load(stream)
    if not isinstance(value, list):
        raise ValueError("a JSON import must be an array of objects (or use JSON Lines)")
    return value


def _jsonl_batches(stream: IO[bytes], size: int) -> Iterator[Batch]:
    first = 1
    lines = (line for line in stream if line.strip())
    for chunk in _chunks(lines, size):
        yield Batch(b"".join(line.rstrip(b"\r\n") + b"\n" for line in chunk), "jsonl", len(chunk), first)
        first += len(chunk)


def _csv_batches(stream: IO[bytes], size: int) -> Iterator[Batch]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        records = (r for r in reader if r)  # the server's csv.DictReader skips blank lines
        first = 1
        for chunk in _chunks(records, size):
            yield Batch(_csv_body(header, chunk), "csv", len(chunk), first)
            first += len(chunk)
    finally:
        text.detach()


def _csv_body(header: list[str], records: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(records)
    return out.getvalue().encode()


def merge(total: ImportReport, part: ImportReport) -> ImportReport:
    """``total`` plus one batch's report (the server numbered its rows for the whole
    source): counts added, the first ``REJECTED_SHOWN`` rejected rows kept."""
    rejected = (total.rejected + part.rejected)[:REJECTED_SHOWN]
    counts = {name: getattr(total, name) + getattr(part, name)
              for name, value in total if isinstance(value, int)}
    return ImportReport(**{**counts, "rejected": rejected})
