"""Reusable field types with the bounds the database can hold, checked at the edge.

Whatever passes these types can be stored by MongoDB *and* by FerretDB (the development
server) and read back: text is valid UTF-8 without NUL, integers fit in int64, floats are
finite, datetimes fall within years 1970-9999, and free-form attributes keep to a shape
both servers accept (no nested arrays, a named depth and size limit).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
EPOCH_MAX = 253_402_300_799  # 9999-12-31T23:59:59Z
TIME_RANGE = "between 1970-01-01 and 9999-12-31 (epoch seconds 0 to 253402300799)"
EARLIEST_DATE, LATEST_DATE = date(1970, 1, 1), date(9999, 12, 31)
DATE_RANGE = "between 1970-01-01 and 9999-12-31"
MAX_ATTRIBUTES_BYTES = 16 * 1024
# Objects and arrays inside ``attributes``, the attributes object itself being level 1.
# MongoDB refuses documents nested past 100 levels; this keeps well inside it.
MAX_ATTRIBUTE_DEPTH = 10
MAX_ATTRIBUTE_KEY = 200
NO_CONTROL_CHARS = r"^[^\u0000-\u001f\u007f]*$"
NO_CONTROL_CHARS_OR_SLASH = r"^[^\u0000-\u001f\u007f/]*$"
# Years 1970-9999 at the start of an ISO date or date-time (JSON schema formats have no range).
YEAR_1970_9999 = r"^(19[7-9][0-9]|[2-9][0-9]{3})-"
NO_NUL = r"^[^\u0000]*$"
# Labels are stripped: at least one character that is not white space.
LABEL = r"^[^\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*$"


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


@dataclass(frozen=True)
class JsonSchemaExtra:
    """Adds keywords to a type's JSON schema (the OpenAPI document) without changing how
    it validates: the validators give the clearer messages, the schema tells clients."""

    extra: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        out.update(dict(self.extra))
        return out


def schema_extra(**extra: Any) -> JsonSchemaExtra:
    return JsonSchemaExtra(tuple(extra.items()))


# ---- text -----------------------------------------------------------------------------
def check_text(value: str) -> str:
    """Valid UTF-8 (no lone surrogates, which JSON escapes can carry) and no NUL: BSON
    keys and PostgreSQL-backed FerretDB strings cannot hold either."""
    if "\x00" in value:
        raise _fail("text", "must not contain the NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail("text", "must be valid UTF-8 (it holds a lone surrogate such as \\ud800)") from None
    return value


def _no_control_chars(value: str) -> str:
    check_text(value)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise _fail("text", "must not contain control characters")
    return value


def _no_slash(value: str) -> str:
    if "/" in value:
        raise _fail("id_slash", "must not contain '/': ids are used in URL paths")
    return value


Text = Annotated[str, AfterValidator(check_text), schema_extra(pattern=NO_NUL)]
# Ids that never become a URL path segment (event ids, recommendation ids).
Id = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_no_control_chars),
    schema_extra(pattern=NO_CONTROL_CHARS),
]
# User and item ids, which name their record in URL paths (``/v1/items/{item_id}``): the
# server decodes ``%2F`` before routing, so one holding '/' could be stored but never read,
# changed or erased through its path again.
PathId = Annotated[
    str, StringConstraints(min_length=1, max_length=128), AfterValidator(_no_control_chars),
    AfterValidator(_no_slash), schema_extra(pattern=NO_CONTROL_CHARS_OR_SLASH),
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_control_chars), schema_extra(pattern=LABEL),
]


# ---- time -----------------------------------------------------------------------------
def _epoch(seconds: float) -> datetime:
    if not math.isfinite(seconds) or not 0 <= seconds <= EPOCH_MAX:
        raise _fail("timestamp_range", f"must be {TIME_RANGE}")
    return datetime.fromtimestamp(seconds, tz=UTC)


def _to_utc(value: Any) -> Any:
    """Accept ISO 8601 strings, epoch seconds (numbers, or digits from CSV) and datetimes."""
    if isinstance(value, bool):
        raise _fail("timestamp_type", "must be an ISO 8601 datetime or epoch seconds")
    if isinstance(value, int | float):
        return _epoch(float(value))
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return _epoch(float(value))
    return value


def _utc(value: datetime) -> datetime:
    """Naive means UTC; the instant, in UTC, must lie within 1970-9999
    (1970-01-01T00:00+05:00 is in 1969, 9999-12-31T23:00-05:00 is in 10000)."""
    if not EARLIEST.year <= value.year <= LATEST.year:
        raise _fail("timestamp_range", f"must be {TIME_RANGE}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        instant = value.astimezone(UTC)
    except OverflowError:
        raise _fail("timestamp_range", f"must be {TIME_RANGE} in UTC") from None
    if instant < EARLIEST:
        raise _fail("timestamp_range", f"must be {TIME_RANGE} in UTC")
    return instant


def _in_range(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise _fail("date_range", f"must be {DATE_RANGE}")
    return value


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$")


def _date_text(value: Any) -> Any:
    """Query parameters: only the ISO form the schema names (no ``0``, no epoch)."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise _fail("date_type", "must be a date written YYYY-MM-DD")
    return value


def _datetime_text(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise _fail("datetime_type", "must be an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z")
    return value


UtcDatetime = Annotated[
    datetime, BeforeValidator(_to_utc), AfterValidator(_utc),
    WithJsonSchema({
        "anyOf": [{"type": "string", "format": "date-time", "pattern": YEAR_1970_9999},
                  {"type": "number", "minimum": 0, "maximum": EPOCH_MAX}],
        "description": f"ISO 8601 date-time (naive means UTC) or epoch seconds, {TIME_RANGE}",
    }),
]
# Query parameters typed as the schema says: ``format: date`` / ``format: date-time``.
DateParam = Annotated[date, BeforeValidator(_date_text), AfterValidator(_in_range),
                      schema_extra(pattern=YEAR_1970_9999)]
DateTimeParam = Annotated[datetime, BeforeValidator(_datetime_text), AfterValidator(_utc),
                          schema_extra(pattern=YEAR_1970_9999)]


# ---- free-form attributes ---------------------------------------------------------------
def _bad(path: str, message: str) -> PydanticCustomError:
    return _fail("attributes", f"{message} (at {path})" if path else message)


def _check_key(key: object, path: str) -> None:
    if not isinstance(key, str):
        raise _bad(path, "keys must be strings")
    if not key:  # an empty key cannot be patched on its own ("attributes." is no path)
        raise _bad(path, "keys must not be empty")
    if len(key) > MAX_ATTRIBUTE_KEY:
        raise _bad(path, f"keys must be at most {MAX_ATTRIBUTE_KEY} characters")
    if key.startswith("$") or "." in key:
        raise _bad(path, f"key {key!r} must not start with '$' or contain '.'")
    try:
        check_text(key)
    except PydanticCustomError as exc:
        raise _bad(path, f"keys {exc.message()}") from None


def _check_scalar(value: object, path: str) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise _bad(path, "integers must fit in 64 bits (-2^63 to 2^63-1)")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(path, "numbers must be finite")
    elif isinstance(value, str):
        try:
            check_text(value)
        except PydanticCustomError as exc:
            raise _bad(path, f"text {exc.message()}") from None
    else:
        raise _bad(path, "values must be JSON (string, number, boolean, null, object or array)")


def check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    """One walk over the whole value (no recursion: depth is what is being checked)."""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict | list) and depth > MAX_ATTRIBUTE_DEPTH:
            raise _bad(path, f"nest at most {MAX_ATTRIBUTE_DEPTH} levels of objects and arrays")
        if isinstance(node, dict):
            for key, inner in node.items():
                _check_key(key, path)
                stack.append((inner, depth + 1, f"{path}.{key}" if path else key))
        elif isinstance(node, list):
            for index, inner in enumerate(node):
                if isinstance(inner, list):
                    raise _bad(f"{path}[{index}]", "arrays must not hold arrays directly "
                                                   "(FerretDB cannot store nested arrays)")
                stack.append((inner, depth + 1, f"{path}[{index}]"))
        else:
            _check_scalar(node, path)
    size = len(json.dumps(value))
    if size > MAX_ATTRIBUTES_BYTES:
        raise _fail("attributes", f"is {size} bytes as JSON; the limit is {MAX_ATTRIBUTES_BYTES}")
    return value


# The JSON schema of one attribute value, recursive: ``api.openapi`` installs it as the
# component ``AttributeValue``. The depth and size limits are in the description only.
ATTRIBUTE_KEYS = {"maxLength": MAX_ATTRIBUTE_KEY, "pattern": r"^[^$.\u0000][^.\u0000]*$"}
ATTRIBUTE_VALUE_REF = {"$ref": "#/components/schemas/AttributeValue"}
_OBJECT = {"type": "object", "propertyNames": ATTRIBUTE_KEYS, "additionalProperties": ATTRIBUTE_VALUE_REF}
ATTRIBUTE_VALUE_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "string", "pattern": NO_NUL},
    {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
    {"type": "number"}, {"type": "boolean"}, {"type": "null"}, _OBJECT,
    {"type": "array", "items": {"anyOf": [
        {"type": "string", "pattern": NO_NUL},
        {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
        {"type": "number"}, {"type": "boolean"}, {"type": "null"}, _OBJECT]}},
]}

Attributes = Annotated[
    dict[str, Any], AfterValidator(check_attributes),
    WithJsonSchema({**_OBJECT, "description": (
        "Free-form JSON object. Keys: not empty, no '$' prefix, no '.', no NUL. Values: text without "
        "NUL, 64-bit integers, finite numbers, booleans, null, objects, and arrays of those "
        f"(no arrays directly inside arrays); at most {MAX_ATTRIBUTE_DEPTH} levels deep and "
        f"{MAX_ATTRIBUTES_BYTES} bytes as JSON."
    )}),
]
