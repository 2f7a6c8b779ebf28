"""Recommendations: for a user, similar items, trending, an anonymous session.

Every answer carries a ``recommendation_id``: send it with the events it leads to
(``track(..., recommendation_id=...)``) so experiments credit the list that was shown.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastinsight_client._call import Call, Route, model
from fastinsight_client.models import RecommendationsOut, SessionIn, SimilarOut, TrendingOut

RECOMMEND = Route("GET", "/v1/users/{user_id}/recommendations", model(RecommendationsOut),
                  query=("k", "offset", "exclude_seen", "categories", "exclude_categories", "exclude"))
SIMILAR = Route("GET", "/v1/items/{item_id}/similar", model(SimilarOut), query=("k", "user_id"))
TRENDING = Route("GET", "/v1/items/trending", model(TrendingOut),
                 query=("k", "window", "category", "user_id"))
SESSION = Route("POST", "/v1/recommendations/session", model(RecommendationsOut), body="SessionIn")


def recommend(
    user_id: str, k: int | None = None, *, offset: int | None = None, exclude_seen: bool | None = None,
    categories: Sequence[str] | None = None, exclude_categories: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> Call[RecommendationsOut]:
    """Top ``k`` items for the user (server default 10), each with a reason.
    ``categories`` keeps only items in one of them; ``exclude*`` leave items out."""
    return RECOMMEND.call({"user_id": user_id}, {
        "k": k, "offset": offset, "exclude_seen": exclude_seen, "categories": categories,
        "exclude_categories": exclude_categories, "exclude": exclude})


def similar(item_id: str, k: int | None = None, *, user_id: str | None = None) -> Call[SimilarOut]:
    """Items like this one; ``user_id`` (the visitor) attributes the answer to them."""
    return SIMILAR.call({"item_id": item_id}, {"k": k, "user_id": user_id})


def trending(k: int | None = None, *, window: str | None = None, category: str | None = None,
             user_id: str | None = None) -> Call[TrendingOut]:
    """Most interacted items over ``window`` (e.g. ``"7d"``, ``"24h"``; server default 7d)."""
    return TRENDING.call(query={"k": k, "window": window, "category": category, "user_id": user_id})


def recommend_session(items: Sequence[str], k: int | None = None, *, exclude: Sequence[str] | None = None,
                      user_id: str | None = None) -> Call[RecommendationsOut]:
    """Recommendations for an anonymous visitor from the items seen in this session."""
    body = {"items": list(items), "k": k, "exclude": None if exclude is None else list(exclude),
            "user_id": user_id}
    return SESSION.call(json_body=SessionIn.model_validate({n: v for n, v in body.items() if v is not None}))
