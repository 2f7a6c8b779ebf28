"""ASGI app for bench/serve.py's floor measurement: the API plus one extra route that does
everything the recommendations route does except recommending: the same path
parameter, API-key check, one-model query parsing and known-user check, then a
constant answer serialised the same way. Its throughput is the most the real route could reach in this
framework if recommending cost nothing.

    uvicorn --app-dir bench serve_floor:app
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from fastinsight.api.app import create_app
from fastinsight.api.query import parse_query
from fastinsight.api.routes.recommend import MAX_ID, recommender_of
from fastinsight.api.security import authorize
from fastinsight.config import Settings
from fastinsight.errors import ValidationFailed
from fastinsight.schemas_recs import RecommendationQuery, RecommendationsOut, RecommendedItem

CONSTANT = RecommendationsOut(
    user_id="u", model_version="constant",
    items=[RecommendedItem(item_id=f"i{n}", score=1.0 - n / 100, reason="similar to Item 1 you liked")
           for n in range(10)],
)


async def constant(request: Request, user_id: str) -> Response:
    authorize(request)
    if len(user_id) > MAX_ID:
        raise ValidationFailed.field("user_id", f"at most {MAX_ID} characters")
    parse_query(request, RecommendationQuery)
    recommender_of(request).answers_from_memory(user_id)
    return Response(CONSTANT.model_copy(update={"user_id": user_id}).model_dump_json(),
                    media_type="application/json")


def build() -> FastAPI:
    app = create_app(Settings())
    router = APIRouter()
    router.add_api_route("/v1/floor/{user_id}/recommendations", constant, methods=["GET"],
                         response_model=RecommendationsOut)
    app.include_router(router)
    # First in line, as the real route nearly is: the router tries routes in order.
    app.router.routes.insert(0, app.router.routes.pop())
    return app


app = build()
