"""Marketing: audiences for an item or a category, customer segments, campaign suggestions.

List endpoints take ``format=csv`` for a spreadsheet-ready export of the same rows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status

from fastinsight.api.deps import AudienceDep, SegmentsDep
from fastinsight.schemas.insights import (
    AudienceOut,
    CampaignsOut,
    RefreshOut,
    SegmentsOut,
    SegmentUsersOut,
)
from fastinsight.services.insights.audience import audience_csv
from fastinsight.services.insights.segments import campaigns_csv, members_csv

router = APIRouter(tags=["marketing"])
admin_router = APIRouter(prefix="/v1/admin/segments", tags=["marketing"])

Format = Annotated[Literal["json", "csv"], Query(description="csv: the same rows as a CSV file")]
Version = Annotated[str | None, Query(max_length=100, description="Default: the active version")]
AudienceK = Annotated[int, Query(ge=1, le=100_000, description="How many users")]
ExcludeSeen = Annotated[bool, Query(description="Leave out users who already interacted")]


def _csv(text: str, filename: str) -> Response:
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _safe(name: str) -> str:
    """A file name for the header: ASCII only (headers are Latin-1; ids may be any text)."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in name)[:80]


@router.get("/v1/items/{item_id}/audience", response_model=AudienceOut)
def item_audience(
    item_id: Annotated[str, Path(min_length=1, max_length=128)],
    svc: AudienceDep, k: AudienceK = 100, exclude_seen: ExcludeSeen = True, format: Format = "json",
) -> AudienceOut | Response:
    """Users most likely to engage with the item, by the active model's predicted affinity."""
    out = svc.for_item(item_id, k, exclude_seen)
    return _csv(audience_csv(out), f"audience-{_safe(item_id)}.csv") if format == "csv" else out


@router.get("/v1/categories/{name}/audience", response_model=AudienceOut)
def category_audience(
    name: Annotated[str, Path(min_length=1, max_length=100)],
    svc: AudienceDep, k: AudienceK = 100, exclude_seen: ExcludeSeen = True, format: Format = "json",
) -> AudienceOut | Response:
    """Users closest to the category's mean item vector; by default those who already
    interacted with any of its items are left out."""
    out = svc.for_category(name, k, exclude_seen)
    return _csv(audience_csv(out), f"audience-{_safe(name)}.csv") if format == "csv" else out


@router.get("/v1/segments")
def list_segments(svc: SegmentsDep, version: Version = None) -> SegmentsOut:
    """Segments of the model version with size, top categories and items, activity, label."""
    return svc.list(version)


@router.get("/v1/segments/campaigns", response_model=CampaignsOut)
def campaigns(
    svc: SegmentsDep,
    per_segment: Annotated[int, Query(ge=1, le=10)] = 5,
    version: Version = None, format: Format = "json",
) -> CampaignsOut | Response:
    """Who gets what: per segment, the items with the highest mean predicted affinity
    among members who have not seen them yet."""
    out = svc.campaigns(per_segment, version)
    return _csv(campaigns_csv(out), "campaigns.csv") if format == "csv" else out


@router.get("/v1/segments/{segment_id}/users", response_model=SegmentUsersOut)
def segment_users(
    segment_id: Annotated[str, Path(min_length=1, max_length=20)],
    svc: SegmentsDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
    version: Version = None, format: Format = "json",
) -> SegmentUsersOut | Response:
    """Members, most typical first; page with ``offset`` = the previous ``next_offset``."""
    out = svc.users(segment_id, offset, limit, version)
    return _csv(members_csv(out), f"segment-{_safe(segment_id)}.csv") if format == "csv" else out


@admin_router.post(
    "/rebuild", response_model=SegmentsOut,
    responses={202: {"model": RefreshOut, "description": "started in the background"}},
)
def rebuild_segments(
    svc: SegmentsDep,
    k: Annotated[int | None, Query(ge=2, le=50, description="Default: chosen by silhouette")] = None,
    wait: bool = True,
) -> SegmentsOut | Response:
    """Cluster the active model's users; replaces that version's segments."""
    out = svc.rebuild(k, wait)
    if out is None:
        return Response(RefreshOut(status="started").model_dump_json(),
                        status_code=status.HTTP_202_ACCEPTED, media_type="application/json")
    return out
