"""Recommendations for a user, similar items, trending, and anonymous sessions."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from fastinsight.errors import ValidationFailed
from fastinsight.schemas_recs import RecommendationsOut, SessionIn, SimilarOut, TrendingOut
from fastinsight.services.recommend import Filters, RecommendService

router = APIRouter(tags=["recommendations"])

K = Annotated[int, Query(ge=1, le=500, description="How many items (1-500)")]
IdList = Annotated[list[str] | None, Query(max_length=500)]
_WINDOW = re.compile(r"^(\d{1,3})([dh])$")


async def get_recommender(request: Request) -> RecommendService:
    svc: RecommendService = request.app.state.container.extras["recommend"]
    return svc


RecommendDep = Annotated[RecommendService, Depends(get_recommender)]


@router.get("/v1/users/{user_id}/recommendations")
async def recommendations(
    user_id: Annotated[str, Path(min_length=1, max_length=128)],
    svc: RecommendDep,
    k: K = 10,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
    exclude_seen: bool = True,
    categories: IdList = None,
    exclude_categories: IdList = None,
    exclude: IdList = None,
) -> RecommendationsOut:
    """Top items for the user, with a reason each. Hidden and disliked items never appear."""
    filters = Filters(exclude_seen=exclude_seen, categories=tuple(categories or ()),
                      exclude_categories=tuple(exclude_categories or ()), exclude=tuple(exclude or ()))
    if svc.answers_from_memory(user_id):
        # A known user is scored from memory in about a millisecond: a hop to the
        # thread pool would cost more than it saves.
        return svc.for_user(user_id, k, offset, filters)
    return await run_in_threadpool(svc.for_user, user_id, k, offset, filters)


@router.get("/v1/items/trending")
def trending(
    svc: RecommendDep,
    k: K = 10,
    window: Annotated[str, Query(description="e.g. 7d or 24h (at most 30d)")] = "7d",
    category: Annotated[str | None, Query(max_length=100)] = None,
) -> TrendingOut:
    match = _WINDOW.match(window)
    if not match:
        raise ValidationFailed.field("window", "use a number followed by d or h, e.g. 7d or 24h")
    amount, unit = int(match.group(1)), match.group(2)
    days = amount if unit == "d" else max(1, -(-amount // 24))
    if days < 1 or days > 30:
        raise ValidationFailed.field("window", "must be between 1h and 30d")
    return svc.trending(k, days, category)


@router.get("/v1/items/{item_id}/similar")
def similar(
    item_id: Annotated[str, Path(min_length=1, max_length=128)], svc: RecommendDep, k: K = 10
) -> SimilarOut:
    return svc.similar(item_id, k)


@router.post("/v1/recommendations/session")
def session(body: SessionIn, svc: RecommendDep) -> RecommendationsOut:
    """Recommendations for an anonymous visitor from the items seen in this session."""
    return svc.for_session(body.items, body.k, body.exclude)
