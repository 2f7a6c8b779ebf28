"""Insights read from the latest rollup snapshot, online metrics, and the refresh (admin)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastinsight_client._call import Call, Route, done_or_started, model
from fastinsight_client.models import (
    ActivityOut,
    CatalogueOut,
    CategoryFunnelsOut,
    FunnelOut,
    ModelsHealthOut,
    OnlineOut,
    OverviewOut,
    RefreshOut,
    TaskStatus,
    TopOut,
)

OVERVIEW = Route("GET", "/v1/insights/overview", model(OverviewOut))
ACTIVITY = Route("GET", "/v1/insights/activity", model(ActivityOut), query=("granularity", "days", "end"))
TOP_ITEMS = Route("GET", "/v1/insights/top-items", model(TopOut), query=("days", "k", "type", "end"))
TOP_CATEGORIES = Route("GET", "/v1/insights/top-categories", model(TopOut),
                       query=("days", "k", "type", "end"))
FUNNEL = Route("GET", "/v1/insights/funnel", model(FunnelOut), query=("days", "category", "steps", "end"))
FUNNEL_BY_CATEGORY = Route("GET", "/v1/insights/funnel/categories", model(CategoryFunnelsOut),
                           query=("days", "steps", "end"))
CATALOGUE = Route("GET", "/v1/insights/catalogue", model(CatalogueOut), query=("days",))
MODEL_HEALTH = Route("GET", "/v1/insights/models", model(ModelsHealthOut))
ONLINE = Route("GET", "/v1/insights/online", model(OnlineOut), query=("days",))
REFRESH = Route("POST", "/v1/admin/insights/refresh", done_or_started(RefreshOut, RefreshOut),
                query=("wait",))
REFRESH_STATUS = Route("GET", "/v1/admin/insights/status", model(TaskStatus))


def overview() -> Call[OverviewOut]:
    """Totals and the last 7 days (404 until a first refresh)."""
    return OVERVIEW.call()


def activity(granularity: Literal["day", "week"] | None = None, days: int | None = None,
             end: date | None = None) -> Call[ActivityOut]:
    return ACTIVITY.call(query={"granularity": granularity, "days": days, "end": end})


def top_items(days: int | None = None, k: int | None = None, type: str | None = None,
              end: date | None = None) -> Call[TopOut]:
    return TOP_ITEMS.call(query={"days": days, "k": k, "type": type, "end": end})


def top_categories(days: int | None = None, k: int | None = None, type: str | None = None,
                   end: date | None = None) -> Call[TopOut]:
    return TOP_CATEGORIES.call(query={"days": days, "k": k, "type": type, "end": end})


def funnel(days: int | None = None, category: str | None = None, steps: str | None = None,
           end: date | None = None) -> Call[FunnelOut]:
    """``steps``: comma-separated interaction types (server default view,click,add_to_cart,purchase)."""
    return FUNNEL.call(query={"days": days, "category": category, "steps": steps, "end": end})


def funnel_by_category(days: int | None = None, steps: str | None = None,
                       end: date | None = None) -> Call[CategoryFunnelsOut]:
    return FUNNEL_BY_CATEGORY.call(query={"days": days, "steps": steps, "end": end})


def catalogue(days: int | None = None) -> Call[CatalogueOut]:
    return CATALOGUE.call(query={"days": days})


def model_health() -> Call[ModelsHealthOut]:
    """The active model's coverage and the versions' metrics."""
    return MODEL_HEALTH.call()


def online_metrics(days: int | None = None) -> Call[OnlineOut]:
    """Click-through of served lists per model version per day."""
    return ONLINE.call(query={"days": days})


def refresh_insights(wait: bool | None = None) -> Call[RefreshOut]:
    """Admin: compute a new snapshot (``wait=True``: in the request, else in the background)."""
    return REFRESH.call(query={"wait": wait})


def insights_status() -> Call[TaskStatus]:
    """Admin: whether a refresh runs and the current snapshot."""
    return REFRESH_STATUS.call()
