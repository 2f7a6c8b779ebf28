"""ASGI app for bench/serve.py's floor measurement: the API plus one extra route that does
everything the recommendations route does except recommending: the same path
parameter, API-key check, one-model query parsing and known-user check, then a
constant answer serialised the same way. Its throughput is the most the real route could reach in this
framework if recommending cost nothing.

    uvicorn --app-dir bench serve_floor:app
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from pydantic_core import to_json
from starlette.responses import Response

from fastinsight.api.app import create_app
from fastinsight.api.deps import get_tracked
from fastinsight.api.query import parse_query
from fastinsight.api.routes.recommend import MAX_ID, hot_router
from fastinsight.api.security import authorize
from fastinsight.config import Settings
from fastinsight.errors import ValidationFailed
from fastinsight.schemas.recs import RecommendationQuery, RecommendationsOut, RecommendedItem

CONSTANT = RecommendationsOut(
    user_id="u", model_version="constant",
    items=[RecommendedItem(item_id=f"i{n}", score=1.0 - n / 100, reason="similar to Item 1 you liked")
           for n in range(10)],
)

PAYLOAD = CONSTANT.model_dump()


async def constant(request: Request) -> Response:
    authorize(request)
    user_id: str = request.path_params["user_id"]
    if len(user_id) > MAX_ID:
        raise ValidationFailed.field("user_id", f"at most {MAX_ID} characters")
    parse_query(request, RecommendationQuery)
    (await get_tracked(request)).route(user_id, "user").service.answers_from_memory(user_id)
    return Response(to_json({**PAYLOAD, "user_id": user_id}), media_type="application/json")


def build() -> FastAPI:
    app = create_app(Settings())
    router = APIRouter()
    router.add_api_route("/v1/floor/{user_id}/recommendations", constant, methods=["GET"],
                         response_model=RecommendationsOut)
    app.include_router(router)
    # Right after the real route: the router tries routes in order, so both are
    # matched after the same routes.
    routes = app.router.routes
    floor = routes.pop()
    hot = next(n for n, r in enumerate(routes) if getattr(r, "original_router", None) is hot_router)
    routes.insert(hot + 1, floor)
    return app


app = build()
