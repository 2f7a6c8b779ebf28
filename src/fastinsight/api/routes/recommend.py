"""Recommendations for a user, similar items, trending, and anonymous sessions."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic_core import to_json
from starlette.responses import Response

from fastinsight.api.deps import TrackedDep, get_tracked
from fastinsight.api.query import openapi_query, parse_query
from fastinsight.api.security import API_KEY_DOCS, authorize
from fastinsight.errors import ValidationFailed
from fastinsight.schemas.recs import (
    RecommendationQuery,
    RecommendationsOut,
    SessionIn,
    SimilarOut,
    TrendingOut,
)
from fastinsight.services.serving.recommend import Filters

router = APIRouter(tags=["recommendations"])

K = Annotated[int, Query(ge=1, le=500, description="How many items (1-500)")]
MAX_ID = 128
# 1-30 days or 1-720 hours.
_WINDOW = re.compile(r"^(([1-9]|[12][0-9]|30)d|([1-9]|[1-9][0-9]|[1-6][0-9]{2}|7[01][0-9]|720)h)$")


# The hottest route has a router of its own, without dependencies or declared
# parameters: it checks the API key itself (``authorize``), reads its query with one
# model (``api.query``) and writes its answer straight to JSON. FastAPI's per-parameter
# and per-dependency resolution cost more than answering from the training-time lists
# (see docs/operations.md, Serving); OpenAPI shows the same parameters and scheme.
hot_router = APIRouter(tags=["recommendations"])
_USER_ID = {"user_id": {"type": "string", "minLength": 1, "maxLength": MAX_ID}}


@hot_router.get("/v1/users/{user_id}/recommendations", response_model=RecommendationsOut,
                openapi_extra={**openapi_query(RecommendationQuery, path=_USER_ID), **API_KEY_DOCS})
async def recommendations(request: Request) -> Response:
    """Top items for the user, with a reason each. Hidden and disliked items never appear.
    The answer's ``recommendation_id`` identifies it for attribution; ``variant`` names the
    experiment arm that answered, if the user is in an experiment."""
    authorize(request)
    user_id: str = request.path_params["user_id"]
    if len(user_id) > MAX_ID:
        raise ValidationFailed.field("user_id", f"at most {MAX_ID} characters")
    query = parse_query(request, RecommendationQuery)
    tracked = await get_tracked(request)  # the key's tenant (loaded on first use)
    route = tracked.route(user_id, "user")
    filters = Filters(exclude_seen=query.exclude_seen, categories=tuple(query.categories),
                      exclude_categories=tuple(query.exclude_categories),
                      exclude=tuple(query.exclude))
    if route.service.answers_from_memory(user_id):
        # A known user is answered from memory in well under a millisecond: a hop to
        # the thread pool would cost more than it saves.
        data = tracked.for_user(route, user_id, query.k, query.offset, filters)
    else:
        data = await run_in_threadpool(tracked.for_user, route, user_id, query.k, query.offset, filters)
    return Response(to_json(data), media_type="application/json")


UserId = Annotated[str | None, Query(min_length=1, max_length=MAX_ID,
                                    description="The visitor, if known: for attribution and experiments")]


@router.get("/v1/items/trending")
def trending(
    svc: TrackedDep,
    k: K = 10,
    window: Annotated[str, Query(description="e.g. 7d or 24h (at most 30d)",
                                 json_schema_extra={"pattern": _WINDOW.pattern})] = "7d",
    category: Annotated[str | None, Query(max_length=100)] = None,
    user_id: UserId = None,
) -> TrendingOut:
    if not _WINDOW.match(window):
        raise ValidationFailed.field("window", "use 1d to 30d or 1h to 720h, e.g. 7d or 24h")
    amount, unit = int(window[:-1]), window[-1]
    days = amount if unit == "d" else -(-amount // 24)
    return svc.trending(k, days, category, user_id)


@router.get("/v1/items/{item_id}/similar")
def similar(
    item_id: Annotated[str, Path(min_length=1, max_length=128)], svc: TrackedDep, k: K = 10,
    user_id: UserId = None,
) -> SimilarOut:
    return svc.similar(item_id, k, user_id)


@router.post("/v1/recommendations/session")
def session(body: SessionIn, svc: TrackedDep) -> RecommendationsOut:
    """Recommendations for an anonymous visitor from the items seen in this session."""
    return svc.session(body.items, body.k, body.exclude, body.user_id)
