"""Response and request models of the recommendation endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from fastinsight.schemas.core import PathId


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
    exclude: list[PathId] = Field(default_factory=list, max_length=500,
                                  description="Item ids to leave out")


RECOMMENDATION_ID = Field(
    default=None, description="Identifies this answer: send it with the interactions it leads to "
    "(attribution) and with `POST /v1/impressions` (what was displayed)")
VARIANT = Field(default=None, description="The experiment arm that answered, if the user is in one")
EXPERIMENT_ID = Field(default=None, description="That experiment")


class RecommendationsOut(BaseModel):
    user_id: str | None
    model_version: str
    items: list[RecommendedItem]
    recommendation_id: str | None = RECOMMENDATION_ID
    variant: str | None = VARIANT
    experiment_id: str | None = EXPERIMENT_ID


class SimilarOut(BaseModel):
    item_id: str
    model_version: str
    items: list[RecommendedItem]
    recommendation_id: str | None = RECOMMENDATION_ID
    variant: str | None = VARIANT
    experiment_id: str | None = EXPERIMENT_ID


class TrendingOut(BaseModel):
    model_version: str
    computed_at: datetime = Field(description="The data snapshot the counts come from")
    window_days: int
    category: str | None
    items: list[RecommendedItem]
    recommendation_id: str | None = RECOMMENDATION_ID
    variant: str | None = VARIANT
    experiment_id: str | None = EXPERIMENT_ID


class SessionIn(BaseModel):
    items: Annotated[list[PathId], Field(min_length=1, max_length=200)]
    k: Annotated[int, Field(ge=1, le=500)] = 10
    exclude: Annotated[list[PathId], Field(max_length=1000)] = Field(default_factory=list)
    user_id: PathId | None = Field(default=None, description="The visitor, if known: for attribution "
                               "and experiments (session experiments need it)")


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
    stages: dict[str, object] = Field(
        default_factory=dict,
        description="Per training stage: seconds and peak_rss_mb (peak_is_per_stage says "
                    "whether each peak is the stage's own)")
    artefact_bytes: int | None = Field(default=None, description="Size of the stored artefacts")
    reason: str | None = None
    rejected_reason: str | None = Field(
        default=None, description="Why the version failed its check at activation (status rejected)")
    load_error: str | None = Field(
        default=None, description="Why this API process could not load the version; it is not "
                                  "tried again until the version is activated again or changes")


class TrainIn(BaseModel):
    algorithm: Annotated[str, Field(min_length=1, max_length=40)] | None = Field(
        default=None, description="Default: FASTINSIGHT_DEFAULT_ALGORITHM (a tenant's own "
        "`default_algorithm` when it set one)")
    params: dict[str, object] = Field(default_factory=dict)
    activate: StrictBool = True

    @field_validator("algorithm", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("leave it out for the default algorithm; null names none")
        return value
