"""Response and request models of the recommendation endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from fastinsight.schemas import Id


class RecommendedItem(BaseModel):
    item_id: str
    score: float
    reason: str = Field(description='Why this item: "similar to X you liked", "trending in Y", "popular"...')


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
    activate: bool = True
