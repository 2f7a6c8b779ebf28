"""Pydantic models, one per direction (``...In`` from clients, ``...Out`` to clients)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

MAX_ATTRIBUTES_BYTES = 16 * 1024


def _no_control_chars(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _to_utc(value: Any) -> Any:
    """Accept ISO 8601 strings, epoch seconds and datetimes; naive means UTC."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 datetime or epoch seconds")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), tz=UTC)
    return value


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _bounded_attributes(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, default=str))
    if size > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_ATTRIBUTES_BYTES}")
    for key in _all_keys(value):
        if key.startswith("$") or "." in key:
            raise ValueError(f"key {key!r} must not start with '$' or contain '.'")
    return value


def _all_keys(value: Any) -> list[str]:
    keys: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            keys.append(str(key))
            keys.extend(_all_keys(inner))
    elif isinstance(value, list):
        for inner in value:
            keys.extend(_all_keys(inner))
    return keys


Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    AfterValidator(_no_control_chars),
]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_control_chars),
]
UtcDatetime = Annotated[datetime, BeforeValidator(_to_utc), AfterValidator(_utc)]
Attributes = Annotated[dict[str, Any], AfterValidator(_bounded_attributes)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- users ---------------------------------------------------------------------------
class UserIn(_In):
    user_id: Id
    attributes: Attributes = Field(default_factory=dict)


class UserPatch(_In):
    attributes: Attributes


class UserOut(BaseModel):
    user_id: str
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# ---- items ---------------------------------------------------------------------------
class ItemIn(_In):
    item_id: Id
    title: Annotated[str, StringConstraints(max_length=1000)] = ""
    description: Annotated[str, StringConstraints(max_length=20_000)] = ""
    categories: Annotated[list[Label], Field(max_length=50)] = Field(default_factory=list)
    tags: Annotated[list[Label], Field(max_length=200)] = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    hidden: bool = False
    published_at: UtcDatetime | None = None


class ItemPatch(_In):
    title: Annotated[str, StringConstraints(max_length=1000)] | None = None
    description: Annotated[str, StringConstraints(max_length=20_000)] | None = None
    categories: Annotated[list[Label], Field(max_length=50)] | None = None
    tags: Annotated[list[Label], Field(max_length=200)] | None = None
    attributes: Attributes | None = None
    hidden: bool | None = None
    published_at: UtcDatetime | None = None


class ItemOut(BaseModel):
    item_id: str
    title: str
    description: str
    categories: list[str]
    tags: list[str]
    attributes: dict[str, Any]
    hidden: bool
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime


# ---- interactions ---------------------------------------------------------------------
class InteractionIn(_In):
    user_id: Id
    item_id: Id
    type: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    value: float | None = Field(default=None, allow_inf_nan=False)
    timestamp: UtcDatetime | None = None
    event_id: Id | None = None
    recommendation_id: Id | None = Field(
        default=None, description="The recommendation answer that led to this event (attribution)")


class InteractionOut(BaseModel):
    user_id: str
    item_id: str
    type: str
    value: float | None
    timestamp: datetime
    event_id: str | None = None


class InteractionBatchIn(_In):
    """Rows are validated one by one, so one bad row does not reject the others."""

    interactions: Annotated[list[Any], Field(min_length=1, max_length=10_000)]


# ---- common ---------------------------------------------------------------------------
T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class FieldError(BaseModel):
    field: str
    message: str


class RejectedRow(BaseModel):
    row: int = Field(description="1-based row number in the submitted file (data rows)")
    errors: list[FieldError]


class ImportReport(BaseModel):
    inserted: int = 0
    updated: int = 0
    unchanged: int = Field(0, description="Rows identical to what is stored (re-sent)")
    duplicates: int = Field(0, description="Interactions already stored (idempotent retry)")
    rejected: list[RejectedRow] = Field(default_factory=list)
    users_created: int = 0

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.duplicates

    def merge(self, other: ImportReport) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.duplicates += other.duplicates
        self.users_created += other.users_created
        self.rejected.extend(other.rejected)


class ErrorBody(BaseModel):
    """The one error shape for every 4xx/5xx response."""

    error: str = Field(description="Stable machine-readable code")
    message: str
    details: list[FieldError] = Field(default_factory=list)
    request_id: str | None = None


class DeletedOut(BaseModel):
    deleted: bool
    interactions_deleted: int = 0


class Health(BaseModel):
    status: str
    database: str | None = None
    model_version: str | None = None
