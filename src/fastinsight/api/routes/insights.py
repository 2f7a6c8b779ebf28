"""Analytics (API key) and their refresh (admin key).

Every answer comes from the rollup snapshot and says when it was computed
(``computed_at``); nothing here scans the interactions per request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from fastinsight.api.deps import InsightsDep
from fastinsight.schemas.insights import (
    ActivityOut,
    CatalogueOut,
    CategoryFunnelsOut,
    FunnelOut,
    ModelsHealthOut,
    OverviewOut,
    RefreshOut,
    TaskStatus,
    TopOut,
)
from fastinsight.schemas.types import DateParam
from fastinsight.services.insights.analytics import default_end, parse_steps

router = APIRouter(prefix="/v1/insights", tags=["insights"])
admin_router = APIRouter(prefix="/v1/admin/insights", tags=["insights"])

Days = Annotated[int, Query(ge=1, le=365, description="Window length in days")]
End = Annotated[
    DateParam | None,
    Query(description="Last day of the window (inclusive); default: the day of the snapshot"),
]
K = Annotated[int, Query(ge=1, le=500)]
EventType = Annotated[
    str | None, Query(alias="type", max_length=40, description="Count only this interaction type")
]


@router.get("/overview")
def overview(svc: InsightsDep) -> OverviewOut:
    """Totals, active users, the last 7 days against the 7 before, top items."""
    return svc.overview()


@router.get("/activity")
def activity(
    svc: InsightsDep,
    granularity: Literal["day", "week"] = "day",
    days: Annotated[int, Query(ge=1, le=1000)] = 30,
    end: End = None,
) -> ActivityOut:
    """Events per day or ISO week by type, distinct active users, new users and items
    (first event in the bucket)."""
    return svc.activity(granularity, days, default_end(end))


@router.get("/top-items")
def top_items(
    svc: InsightsDep, days: Days = 7, k: K = 20, event_type: EventType = None, end: End = None
) -> TopOut:
    """Most engaged items in the window, with the change against the previous window."""
    return svc.top_items(days, k, event_type, default_end(end))


@router.get("/top-categories")
def top_categories(
    svc: InsightsDep, days: Days = 7, k: K = 20, event_type: EventType = None, end: End = None
) -> TopOut:
    """Like top-items per category; an item in two categories counts in both."""
    return svc.top_categories(days, k, event_type, default_end(end))


Steps = Annotated[
    str | None,
    Query(max_length=400, description="Comma-separated types; default view,click,add_to_cart,purchase"),
]


@router.get("/funnel")
def funnel(
    svc: InsightsDep,
    days: Days = 30,
    category: Annotated[str | None, Query(max_length=100)] = None,
    steps: Steps = None,
    end: End = None,
) -> FunnelOut:
    """Events per funnel step in the window, with step-to-step and overall conversion."""
    return svc.funnel(days, category, parse_steps(steps), default_end(end))


@router.get("/funnel/categories")
def funnel_by_category(
    svc: InsightsDep, days: Days = 30, steps: Steps = None, end: End = None
) -> CategoryFunnelsOut:
    return svc.funnel_by_category(days, parse_steps(steps), default_end(end))


@router.get("/catalogue")
def catalogue(svc: InsightsDep, days: Days = 30) -> CatalogueOut:
    """Items never interacted with, cold items, concentration on the top items."""
    return svc.catalogue(days)


@router.get("/models")
def models(svc: InsightsDep) -> ModelsHealthOut:
    """Model versions over time with their offline metrics and recommendation coverage."""
    return svc.model_health()


@admin_router.post(
    "/refresh", responses={202: {"model": RefreshOut, "description": "started in the background"}}
)
def refresh(svc: InsightsDep, response: Response, wait: bool = False) -> RefreshOut:
    """Recompute the rollups (one scan of the interactions). 409 while one is running."""
    out = svc.refresh(wait=wait)
    if out.status == "started":
        response.status_code = status.HTTP_202_ACCEPTED
    return out


@admin_router.get("/status")
def refresh_status(svc: InsightsDep) -> TaskStatus:
    return svc.status()

