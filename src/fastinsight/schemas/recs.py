"""Response and request models of the recommendation endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from fastinsight.schemas.core import Id


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    reason: str = Field(description='Why this item: "similar to X you liked", "trending in Y", "popular"...')


class RecommendationQuery(BaseModel):
    """Query parameters of ``GET /v1/users/{user_id}/recommendations``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    k: int = Field(default=10, ge=1, le=500, description="How many items (1-500)")
    offset: int = Field(default=0, ge=0, le=1000, description="Skip this many (paging)")
    exclude_seen: bool = Field(default=True, description="Leave out items the user interacted with")
    categories: list[str] = Field(default_factory=list, max_length=500,
                                  description="Only items in one of these categories")
    exclude_categories: list[str] = Field(default_factory=list, max_length=500,
                                          description="No items in these categories")
    exclude: list[str] = Field(default_factory=list, max_length=500,
                               description="Item ids to leave out")


class RecommendationsOut(BaseModel):
    user_id: str | None
    model_version: str
    items: list[RecommendedItem]


class SimilarOut(BaseModel):
    item_id: str
    model_version: str
    items: list[RecommendedItem]


class TrendingOut(BaseModel):
    model_version: str
    computed_at: datetime = Field(description="The data snapshot the counts come from")
    window_days: int
    category: str | None
    items: list[RecommendedItem]


class SessionIn(BaseModel):
    items: Annotated[list[Id], Field(min_length=1, max_length=200)]
    k: Annotated[int, Field(ge=1, le=500)] = 10
    exclude: Annotated[list[Id], Field(max_length=1000)] = Field(default_factory=list)


class ModelVersionOut(BaseModel):
    version: str
    algorithm: str
    status: str
    active: bool
    created_at: datetime
    params: dict[str, object]
    metrics: dict[str, float]
    snapshot: dict[str, object]
    fit_seconds: float | None = None
    duration_seconds: float | None = None
    reason: str | None = None


class TrainIn(BaseModel):
    algorithm: Annotated[str, Field(min_length=1, max_length=40)] = "als"
    params: dict[str, object] = Field(default_factory=dict)
    activate: StrictBool = True
