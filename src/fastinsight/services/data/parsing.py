"""Streaming readers for the import formats: JSON array, JSON Lines and CSV.

Each reader yields ``(row_number, row)`` where ``row`` is a dict or a :class:`RowError`
(a row that could not even be parsed). Row numbers are 1-based data rows (the CSV
header is not counted). Nothing reads the whole input at once.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Any

from fastinsight.errors import UnsupportedMediaType, ValidationFailed
from fastinsight.services.data.json_array import TOO_DEEP, json_array_rows


class Format(StrEnum):
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"


_MEDIA_TYPES = {
    "application/json": Format.JSON,
    "application/x-ndjson": Format.JSONL,
    "application/jsonl": Format.JSONL,
    "application/json-lines": Format.JSONL,
    "application/x-jsonlines": Format.JSONL,
    "text/csv": Format.CSV,
    "application/csv": Format.CSV,
}


@dataclass(frozen=True)
class RowError:
    field: str
    message: str


ParsedRow = tuple[int, dict[str, Any] | RowError]


def format_from_content_type(content_type: str | None) -> Format:
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _MEDIA_TYPES:
        return _MEDIA_TYPES[media]
    allowed = ", ".join(sorted(_MEDIA_TYPES))
    raise UnsupportedMediaType(
        f"Content-Type {media or '(none)'!r} is not an import format; use one of: {allowed}",
        details=[{"field": "Content-Type", "message": f"expected one of: {allowed}"}],
    )


def format_from_path(name: str) -> Format:
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return Format.JSONL
    if lower.endswith(".json"):
        return Format.JSON
    if lower.endswith(".csv"):
        return Format.CSV
    raise ValidationFailed.field("file", "name must end in .json, .jsonl, .ndjson or .csv")


def read_rows(stream: IO[bytes], fmt: Format, kind: str) -> Iterator[ParsedRow]:
    if fmt is Format.JSONL:
        return _jsonl_rows(stream)
    if fmt is Format.CSV:
        return _csv_rows(stream, kind)
    return _json_array_rows(stream)


def _jsonl_rows(stream: IO[bytes]) -> Iterator[ParsedRow]:
    row = 0
    for raw in stream:
        line = raw.strip()
        if not line:
            continue
        row += 1
        try:
            value = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            yield row, RowError("(row)", f"not valid JSON: {exc}")
            continue
        except RecursionError:
            yield row, RowError("(row)", TOO_DEEP)
            continue
        yield row, value if isinstance(value, dict) else RowError("(row)", "must be a JSON object")


def _json_array_rows(stream: IO[bytes]) -> Iterator[ParsedRow]:
    return json_array_rows(stream, RowError)


_LIST_FIELDS = {"categories", "tags"}
_JSON_FIELDS = {"attributes"}
# CSV holds only text: these columns become the JSON types the models expect (strictly).
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_BOOL_FIELDS = {"hidden"}
_NUMBER_FIELDS = {"value"}


_CSV_REQUIRED = {"users": ("user_id",), "items": ("item_id",),
                 "interactions": ("user_id", "item_id", "type")}


def _csv_rows(stream: IO[bytes], kind: str) -> Iterator[ParsedRow]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    try:
        missing = [c for c in _CSV_REQUIRED.get(kind, ()) if c not in (reader.fieldnames or ())]
        if missing:
            raise ValidationFailed.field(
                "body", f"the CSV header line must name the columns {', '.join(missing)}")
        for number, record in enumerate(reader, start=1):
            yield number, _csv_record(record, kind)
    except UnicodeDecodeError as exc:
        raise ValidationFailed.field("body", f"not UTF-8: {exc.reason}") from exc
    except csv.Error as exc:
        raise ValidationFailed.field("body", f"CSV error: {exc}") from exc
    finally:
        text.detach()


def _csv_record(record: dict[str | Any, Any], kind: str) -> dict[str, Any] | RowError:
    if None in record:
        return RowError("(row)", "has more columns than the header")
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or value == "":
            continue
        if key in _LIST_FIELDS:
            row[key] = [part.strip() for part in value.split("|") if part.strip()]
        elif key in _BOOL_FIELDS:
            row[key] = _BOOLEANS.get(value.strip().lower(), value)
        elif key in _NUMBER_FIELDS:
            row[key] = _number(value)
        elif key in _JSON_FIELDS:
            try:
                row[key] = json.loads(value)
            except ValueError:
                return RowError(key, "must be a JSON object")
            except RecursionError:
                return RowError(key, TOO_DEEP)
        elif key.startswith("attr.") and kind in {"users", "items"}:
            extra[key[5:]] = value
        else:
            row[key] = value
    if extra:
        attrs = row.setdefault("attributes", {})
        if isinstance(attrs, dict):
            attrs.update(extra)
    return row


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # the model names the field and the problem


def rows_from_objects(objects: Iterable[Any]) -> Iterator[ParsedRow]:
    """Rows from already-decoded JSON values (the batch endpoints)."""
    for number, value in enumerate(objects, start=1):
        yield number, value if isinstance(value, dict) else RowError("(row)", "must be a JSON object")
