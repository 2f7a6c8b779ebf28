"""Tenants and their keys: the operator API's requests and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from fastinsight.schemas.types import NO_NUL, Text, check_text, schema_extra

TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]
# Free text as ``Text`` checks it (no NUL, valid UTF-8: FerretDB on PostgreSQL cannot store
# NUL), the bounds first as in ``Id`` and ``Label`` so lengths and messages stay as they were.
Name = Annotated[str, StringConstraints(max_length=200), AfterValidator(check_text),
                 schema_extra(pattern=NO_NUL)]
Category = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(check_text),
                     schema_extra(pattern=NO_NUL)]
PinnedItem = Category  # an item id: the same bounds
EventType = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Weight = Annotated[float, Field(ge=-100, le=100)]
TenantJob = Literal["backup", "retrain"]
Cron = Annotated[str, StringConstraints(max_length=100), AfterValidator(check_text),
                 schema_extra(pattern=NO_NUL)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantSettings(_Strict):
    """The settings a tenant may set for itself; unset ones take the deployment's."""

    interaction_weights: dict[EventType, Weight] | None = Field(default=None, min_length=1,
                                                                max_length=32)
    time_decay_half_life_days: float | None = Field(default=None, gt=0, le=3650)
    default_algorithm: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = None
    boost_categories: dict[Category, Annotated[float, Field(ge=0, le=100)]] | None = Field(
        default=None, max_length=100)
    pinned_items: list[PinnedItem] | None = Field(default=None, max_length=50)
    max_per_category: int | None = Field(default=None, ge=1, le=500)
    conversion_types: list[EventType] | None = Field(default=None, min_length=1, max_length=16)
    attribution_window_seconds: float | None = Field(default=None, gt=0, le=90 * 86_400)
    schedules: dict[TenantJob, Cron] | None = Field(
        default=None, description="Cron expressions (UTC) of the tenant's jobs for `fastinsight "
        "scheduler`; an empty one turns that job off; unset: the deployment's schedules")

    @field_validator("schedules")
    @classmethod
    def _crons(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, cron in (value or {}).items():
            if cron.strip() and not croniter.is_valid(cron):
                raise ValueError(f"{name}: invalid cron expression {cron!r}")
        return value


class TenantQuotas(_Strict):
    """Most rows a tenant may store, per kind; unset: no bound."""

    users: int | None = Field(default=None, ge=0, le=10**10)
    items: int | None = Field(default=None, ge=0, le=10**10)
    interactions: int | None = Field(default=None, ge=0, le=10**11)


class TenantLimits(_Strict):
    """Requests per second per API process (unset: the deployment's tenant_rate_limit)."""

    requests_per_second: float | None = Field(default=None, gt=0, le=1_000_000)
    burst: int | None = Field(default=None, ge=1, le=1_000_000)


class TenantIn(_Strict):
    id: TenantId = Field(description="Lower-case letters, digits and '-'; names its database.")
    name: Name = ""
    settings: TenantSettings = TenantSettings()
    quotas: TenantQuotas = TenantQuotas()
    limits: TenantLimits = TenantLimits()


class TenantPatch(_Strict):
    name: Name | None = None
    settings: TenantSettings | None = None
    quotas: TenantQuotas | None = None
    limits: TenantLimits | None = None


class TenantUsage(BaseModel):
    users: int
    items: int
    interactions: int
    storage_bytes: int | None = Field(description="the database's data size, as the server reports it")
    loaded: bool = Field(description="whether this API process has the tenant loaded")
    model_bytes: int = Field(description="model files this process maps for the tenant")
    requests: int = Field(description="requests this process answered for the tenant")
    rate_limited: int = Field(description="requests this process refused with 429")


class TenantOut(BaseModel):
    id: str
    name: str
    status: Literal["active", "suspended"]
    database: str
    created_at: datetime | None
    settings: TenantSettings
    quotas: TenantQuotas
    limits: TenantLimits
    usage: TenantUsage | None = None


class TenantList(BaseModel):
    tenants: list[TenantOut]


class KeyIn(_Strict):
    scope: Literal["tracking", "api", "admin"] = Field(
        description="tracking: events and recommendations only (for browsers); api: the data "
        "and recommendation routes; admin: everything of the tenant, jobs included")
    name: Name = Field(default="", description="What the key is for.")


class KeyOut(BaseModel):
    key_id: str
    tenant: str
    scope: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown once, stored only as its SHA-256.")


class KeyList(BaseModel):
    keys: list[KeyOut]


class TenantDeleted(BaseModel):
    id: str
    deleted: bool
    databases_dropped: list[str]
    files_removed: int


class ExportedKey(_Strict):
    """A live key as the control database holds it: its SHA-256, never the key."""

    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    scope: Literal["tracking", "api", "admin"]
    name: Name = ""
    created_at: datetime


class TenantExport(_Strict):
    """A tenant's record and live keys, to recreate it in another deployment (its data
    moves separately, as a backup archive of its database)."""

    format: Literal["fastinsight-tenant/1"] = "fastinsight-tenant/1"
    exported_at: datetime
    id: TenantId
    name: Name = ""
    status: Literal["active", "suspended"] = "active"
    database: Text = Field(description="the database its data was in where it was exported")
    settings: TenantSettings = TenantSettings()
    quotas: TenantQuotas = TenantQuotas()
    limits: TenantLimits = TenantLimits()
    keys: list[ExportedKey] = Field(default_factory=list)
