"""ASGI app for bench/serve.py's floor measurement: the API plus one extra route with the
recommendations route's exact signature (path, query parameters, dependencies, API key,
response model) that returns a constant list. Its throughput is the most the real route
could reach in this framework if recommending cost nothing.

    uvicorn --app-dir bench serve_floor:app
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from fastinsight.api.app import create_app
from fastinsight.api.routes.recommend import recommendations
from fastinsight.api.security import require_api_key
from fastinsight.config import Settings
from fastinsight.schemas_recs import RecommendationsOut, RecommendedItem

CONSTANT = RecommendationsOut(
    user_id="u", model_version="constant",
    items=[RecommendedItem(item_id=f"i{n}", score=1.0 - n / 100, reason="similar to Item 1 you liked")
           for n in range(10)],
)


async def constant(**_: Any) -> RecommendationsOut:
    return CONSTANT


# FastAPI reads parameters from the signature: borrow the real route's, resolved.
constant.__signature__ = inspect.signature(recommendations, eval_str=True)  # type: ignore[attr-defined]


def build() -> FastAPI:
    app = create_app(Settings())
    router = APIRouter(dependencies=[Depends(require_api_key)])
    router.add_api_route("/v1/floor/{user_id}/recommendations", constant, methods=["GET"])
    app.include_router(router)
    # First in line, as the real route nearly is: the router tries routes in order.
    app.router.routes.insert(0, app.router.routes.pop())
    return app


app = build()
