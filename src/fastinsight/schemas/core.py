"""Pydantic models, one per direction (``...In`` from clients, ``...Out`` to clients)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints

from fastinsight.schemas.types import (
    MAX_ATTRIBUTES_BYTES,
    Attributes,
    Id,
    Label,
    PathId,
    Text,
    UtcDatetime,
)

__all__ = ["MAX_ATTRIBUTES_BYTES", "Attributes", "Id", "Label", "PathId", "Text", "UtcDatetime"]

Title = Annotated[Text, StringConstraints(max_length=1000)]
Description = Annotated[Text, StringConstraints(max_length=20_000)]
InteractionType = Annotated[Text, StringConstraints(min_length=1, max_length=40)]
Categories = Annotated[list[Label], Field(max_length=50)]
Tags = Annotated[list[Label], Field(max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# ---- users ---------------------------------------------------------------------------
class UserIn(_In):
    user_id: PathId
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
    item_id: PathId
    title: Title = ""
    description: Description = ""
    categories: Categories = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    hidden: StrictBool = False
    published_at: UtcDatetime | None = None


_RESETS = "; null resets it to its empty value"


class ItemPatch(_In):
    """Only the fields sent change. ``null`` resets a field to its empty value, the one a
    new item gets when the field is left out: "" for text, [] for lists, {} for
    attributes, false for ``hidden``, null for ``published_at``."""

    title: Title | None = Field(None, description="New title" + _RESETS)
    description: Description | None = Field(None, description="New description" + _RESETS)
    categories: Categories | None = Field(None, description="Replaces the categories" + _RESETS)
    tags: Tags | None = Field(None, description="Replaces the tags" + _RESETS)
    attributes: Attributes | None = Field(None, description="Replaces the attributes" + _RESETS)
    hidden: StrictBool | None = Field(None, description="Hide from recommendations" + _RESETS)
    published_at: UtcDatetime | None = None

    def changes(self) -> dict[str, Any]:
        """The fields sent, with ``null`` replaced by the field's empty value."""
        return {name: ItemIn.model_fields[name].get_default(call_default_factory=True)
                if value is None else value
                for name, value in self.model_dump(exclude_unset=True).items()}


def _none_as(empty: Any) -> BeforeValidator:
    """Reads items stored before null was refused as empty (they stay readable)."""
    return BeforeValidator(lambda value: empty() if value is None else value)


class ItemOut(BaseModel):
    item_id: str
    title: Annotated[str, _none_as(str)]
    description: Annotated[str, _none_as(str)]
    categories: Annotated[list[str], _none_as(list)]
    tags: Annotated[list[str], _none_as(list)]
    attributes: Annotated[dict[str, Any], _none_as(dict)]
    hidden: Annotated[bool, _none_as(bool)]
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime


# ---- interactions ---------------------------------------------------------------------
MAX_VALUE = 1e12
"""Largest ``value`` magnitude an interaction may carry (ratings, money amounts)."""


class InteractionIn(_In):
    user_id: PathId
    item_id: PathId
    type: InteractionType
    value: float | None = Field(
        default=None, allow_inf_nan=False, strict=True, ge=-MAX_VALUE, le=MAX_VALUE,
        description="a rating's score, or a conversion's amount of money; at most 1e12 either way")
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


class BeaconIn(_In):
    """``POST /v1/beacon``: events a page sends as it is left (``navigator.sendBeacon``),
    which cannot set headers, so the API key travels in the body."""

    key: Annotated[str, StringConstraints(max_length=256)] = Field(
        description="The API key (the admin key is refused: it must never reach a browser)")
    interactions: Annotated[list[Any], Field(min_length=1, max_length=1000)]


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


REJECTED_SHOWN = 1000


class ImportReport(BaseModel):
    inserted: int = 0
    updated: int = 0
    unchanged: int = Field(0, description="Rows identical to what is stored (re-sent)")
    duplicates: int = Field(0, description="Interactions already stored (idempotent retry)")
    rejected: list[RejectedRow] = Field(
        default_factory=list,
        description=f"The first {REJECTED_SHOWN:,} rejected rows, by row number")
    rejected_count: int = Field(0, description="Rejected rows in all (also those not listed)")
    users_created: int = 0

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.duplicates

    def add_rejected(self, rows: list[RejectedRow]) -> None:
        """Count every rejected row; keep the first ``REJECTED_SHOWN`` (bounded memory)."""
        self.rejected_count += len(rows)
        room = REJECTED_SHOWN - len(self.rejected)
        if room > 0:
            self.rejected.extend(sorted(rows, key=lambda r: r.row)[:room])


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
