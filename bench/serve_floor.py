"""ASGI app for bench/serve.py's floor measurement: the API plus one extra route with the
recommendations route's signature (path, query parameters, API key, response model)
that returns a constant list. Its throughput is the most the real route could reach
in this framework if recommending cost nothing.

    uvicorn --app-dir bench serve_floor:app
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query

from fastinsight.api.app import create_app
from fastinsight.api.routes.recommend import IdList, K, RecommendDep
from fastinsight.api.security import require_api_key
from fastinsight.config import Settings
from fastinsight.schemas_recs import RecommendationsOut, RecommendedItem

CONSTANT = RecommendationsOut(
    user_id="u", model_version="constant",
    items=[RecommendedItem(item_id=f"i{n}", score=1.0 - n / 100, reason="similar to Item 1 you liked")
           for n in range(10)],
)


def build() -> FastAPI:
    app = create_app(Settings())
    router = APIRouter(dependencies=[Depends(require_api_key)])

    @router.get("/v1/floor/{user_id}/recommendations")
    async def constant(
        user_id: Annotated[str, Path(min_length=1, max_length=128)],
        svc: RecommendDep,
        k: K = 10,
        offset: Annotated[int, Query(ge=0, le=1000)] = 0,
        exclude_seen: bool = True,
        categories: IdList = None,
        exclude_categories: IdList = None,
        exclude: IdList = None,
    ) -> RecommendationsOut:
        return CONSTANT

    app.include_router(router)
    # First in line, as the real route nearly is: the router tries routes in order.
    app.router.routes.insert(0, app.router.routes.pop())
    return app


app = build()
