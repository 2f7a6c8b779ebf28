"""Response models of the insight, audience and segment endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Trend = Literal["rising", "falling", "steady", "new"]


class Snapshot(BaseModel):
    """Where the numbers come from: a rollup snapshot, not the live collection."""

    computed_at: datetime = Field(
        description="Every number in this response is as of this time (the rollup snapshot); "
        "events recorded later appear after the next refresh."
    )
    snapshot_id: str
    age_seconds: float


class Window(BaseModel):
    start: date
    end: date = Field(description="Inclusive")
    days: int


class TrendEntry(BaseModel):
    id: str
    title: str | None = None
    count: int = Field(description="Events in the window")
    previous: int = Field(description="Events in the previous window of the same length")
    change: float | None = Field(description="Relative change vs the previous window; null if it was 0")
    trend: Trend
    share: float = Field(description="Share of all events in the window")


class OverviewOut(Snapshot):
    interactions: int
    users: int = Field(description="Users with at least one interaction")
    items: int = Field(description="Items in the catalogue")
    items_with_interactions: int
    first_day: date
    last_day: date
    active_users: dict[str, int] = Field(description="Distinct users active in the last 1, 7, 30 days")
    interactions_7d: int
    interactions_previous_7d: int
    by_type: dict[str, int]
    top_items_7d: list[TrendEntry]


class ActivityBucket(BaseModel):
    start: date
    total: int
    by_type: dict[str, int]
    active_users: int = Field(description="Distinct users with an event in the bucket")
    new_users: int = Field(description="Users whose first event falls in the bucket")
    new_items: int = Field(description="Items whose first event falls in the bucket")


class ActivityOut(Snapshot):
    granularity: Literal["day", "week"]
    window: Window
    types: list[str]
    buckets: list[ActivityBucket]


class TopOut(Snapshot):
    window: Window
    previous_window: Window
    type: str | None
    total: int = Field(description="All events in the window (of `type` if given)")
    entries: list[TrendEntry]


class FunnelStep(BaseModel):
    type: str
    count: int
    rate_from_previous: float | None
    rate_from_first: float | None


class FunnelOut(Snapshot):
    window: Window
    category: str | None
    steps: list[FunnelStep]


class CategoryFunnel(BaseModel):
    category: str
    steps: list[FunnelStep]


class CategoryFunnelsOut(Snapshot):
    window: Window
    categories: list[CategoryFunnel]


class CatalogueOut(Snapshot):
    items: int = Field(description="Items in the catalogue")
    never_interacted: int
    never_interacted_share: float
    never_interacted_sample: list[str]
    cold_in_window: int = Field(description="Catalogue items without any event in the window")
    window: Window
    unknown_items: int = Field(description="Items with events that are no longer in the catalogue")
    top_1pct_items: int
    top_1pct_share: float = Field(description="Share of all events on the top 1% of items")
    top_10pct_share: float
    gini: float = Field(description="0 = events spread evenly over the catalogue, 1 = all on one item")


class Coverage(BaseModel):
    computed_at: datetime
    snapshot_id: str
    k: int
    users_sampled: int
    catalogue_coverage: float = Field(
        description="Share of visible catalogue items in at least one sampled user's top-k"
    )
    items_recommended: int
    user_coverage: float = Field(description="Share of users with events the model has a vector for")


class ModelHealth(BaseModel):
    version: str
    algorithm: str
    status: str
    active: bool
    created_at: datetime
    metrics: dict[str, float]
    trained_on: dict[str, int]
    coverage: Coverage | None


class ModelsHealthOut(BaseModel):
    active_version: str | None
    versions: list[ModelHealth] = Field(description="Newest first")


class RefreshOut(BaseModel):
    status: Literal["started", "done"]
    snapshot_id: str | None = None
    computed_at: datetime | None = None
    duration_seconds: float | None = None
    interactions: int | None = None


class TaskStatus(BaseModel):
    running: bool
    started_at: datetime | None
    finished_at: datetime | None
    last_error: str | None
    current: Snapshot | None = None


# ---- audiences and segments ---------------------------------------------------------------
class AudienceMember(BaseModel):
    rank: int
    user_id: str
    score: float


class AudienceOut(BaseModel):
    target: str = Field(description="The item id or category name")
    kind: Literal["item", "category"]
    model_version: str
    excluded_as_of: datetime | None = Field(
        description="Users who interacted before this time (plus real-time events) are excluded"
    )
    excluded: int
    users: list[AudienceMember]


class CategoryShare(BaseModel):
    category: str
    share: float = Field(description="Share of the segment's engagements in this category")
    lift: float = Field(description="That share divided by the category's share over all users")


class SegmentItem(BaseModel):
    item_id: str
    title: str
    members: int = Field(description="Members who interacted with the item")
    share: float


class SegmentOut(BaseModel):
    segment_id: str
    label: str
    size: int
    share: float
    activity_level: Literal["highly active", "moderately active", "occasional"]
    mean_events: float
    top_categories: list[CategoryShare]
    top_items: list[SegmentItem]


class SegmentsOut(BaseModel):
    model_version: str
    built_at: datetime
    k: int
    silhouette: float | None
    chosen_by: Literal["given", "silhouette"]
    users: int
    insights_as_of: datetime | None
    segments: list[SegmentOut]


class SegmentMember(BaseModel):
    user_id: str
    similarity: float = Field(description="Cosine similarity to the segment centre")


class SegmentUsersOut(BaseModel):
    segment_id: str
    model_version: str
    total: int
    offset: int
    next_offset: int | None
    users: list[SegmentMember]
    erased: int = Field(default=0, description="Members of this page left out: erased since the "
                        "model version was trained (a page may hold fewer than `limit` users)")


class CampaignRow(BaseModel):
    segment_id: str
    segment_label: str
    segment_size: int
    rank: int
    item_id: str
    title: str
    score: float = Field(description="Mean predicted affinity over the segment, counting "
                         "members who already saw the item as 0")
    audience: int = Field(description="Members who have not interacted with the item yet")


class CampaignsOut(BaseModel):
    model_version: str
    built_at: datetime
    rows: list[CampaignRow]
