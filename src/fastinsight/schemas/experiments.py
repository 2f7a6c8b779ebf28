"""Impressions, experiments and their reports: requests and answers.

Field-level checks live here; checks across fields (shares summing to 1, a control
that names an arm, overlapping experiments, unknown versions) are made by
``services.experiments.service`` so that each error names the field it is about.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from fastinsight.schemas.core import Id, Label, UtcDatetime
from fastinsight.schemas.types import NO_NUL, check_text, schema_extra

Metric = Literal["ctr", "conversion", "value_per_user"]
Endpoint = Literal["user", "similar", "session"]
Status = Literal["scheduled", "running", "stopped"]
ArmName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
MAX_WINDOW_SECONDS = 30 * 86_400
Traffic = Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=2, max_length=2)]
# Free text as ``Text`` checks it (no NUL, valid UTF-8), with each field's own bounds. The
# bounds come first, as in ``Id`` and ``Label``: after the check (``Annotated[Text, ...]``)
# pydantic would count the length before stripping and take a name of spaces as "".
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 AfterValidator(check_text), schema_extra(pattern=NO_NUL)]
Description = Annotated[str, StringConstraints(max_length=2000), AfterValidator(check_text),
                        schema_extra(pattern=NO_NUL)]
Salt = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(check_text),
                 schema_extra(pattern=NO_NUL)]
Algorithm = Annotated[str, StringConstraints(min_length=1, max_length=40), AfterValidator(check_text),
                      schema_extra(pattern=NO_NUL)]


def _user_only() -> list[Endpoint]:
    return ["user"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- impressions ------------------------------------------------------------------------
class DisplayedIn(_In):
    recommendation_id: Id
    item_ids: Annotated[list[Id], Field(max_length=500)] = Field(
        description="The items of that answer the visitor actually saw (a subset of it)")
    displayed_at: UtcDatetime | None = None


class DisplayedBatchIn(_In):
    impressions: Annotated[list[DisplayedIn], Field(min_length=1, max_length=1000)]


class DisplayedOut(BaseModel):
    accepted: int
    duplicates: int = Field(description="Lists reported before (the first report counts)")


# ---- experiment definitions ---------------------------------------------------------------
class RuleSet(_In):
    """Business rules for one arm, instead of the configured ones."""

    boost_categories: dict[Label, Annotated[float, Field(gt=0, le=100)]] = Field(default_factory=dict)
    pinned_items: Annotated[list[Id], Field(max_length=50)] = Field(default_factory=list)
    max_per_category: Annotated[int, Field(ge=1, le=500)] | None = None


class ArmIn(_In):
    name: ArmName
    model_version: Id | None = Field(default=None, description="Serve this model version")
    algorithm: Algorithm | None = Field(
        default=None, description="Serve the newest ready version of this algorithm")
    rules: RuleSet | None = None
    share: Share


class HoldoutIn(_In):
    """A control arm held out of the tested changes (by default popularity)."""

    name: ArmName = "holdout"
    model_version: Id | None = None
    algorithm: Algorithm | None = None
    rules: RuleSet | None = None
    share: Share


class ExperimentIn(_In):
    name: Name
    description: Description = ""
    variants: Annotated[list[ArmIn], Field(min_length=1, max_length=10)]
    holdout: HoldoutIn | None = None
    control: ArmName | None = Field(
        default=None, description="The arm the others are compared with; default: the holdout, "
        "else the first variant")
    traffic: Traffic = Field(
        default_factory=lambda: [0.0, 1.0],
        description="Slice [from, to) of all users (by a fixed hash) this experiment runs on")
    endpoints: Annotated[list[Endpoint], Field(min_length=1, max_length=3)] = Field(
        default_factory=_user_only)
    salt: Salt | None = Field(default=None, description="Assignment salt; default: the experiment id")
    start_at: UtcDatetime | None = Field(default=None, description="Default: now")
    stop_at: UtcDatetime | None = None
    primary_metric: Metric = "ctr"
    attribution_window_seconds: Annotated[float, Field(gt=0, le=MAX_WINDOW_SECONDS)] | None = None
    min_detectable_lift: Annotated[float, Field(gt=0, le=10)] = Field(
        default=0.1, description="Relative lift worth detecting: sets the sequential test's "
        "mixing scale and the 'exposures needed' estimate")


class ExperimentPatch(_In):
    """Name, description and stop time may change at any time; the rest only before start."""

    name: Name | None = None
    description: Description | None = None
    variants: Annotated[list[ArmIn], Field(min_length=1, max_length=10)] | None = None
    holdout: HoldoutIn | None = None
    control: ArmName | None = None
    traffic: Traffic | None = None
    endpoints: Annotated[list[Endpoint], Field(min_length=1, max_length=3)] | None = None
    salt: Salt | None = None
    start_at: UtcDatetime | None = None
    stop_at: UtcDatetime | None = None
    primary_metric: Metric | None = None
    attribution_window_seconds: Annotated[float, Field(gt=0, le=MAX_WINDOW_SECONDS)] | None = None
    min_detectable_lift: Annotated[float, Field(gt=0, le=10)] | None = None


class ArmOut(BaseModel):
    name: str
    model_version: str | None
    algorithm: str | None
    rules: RuleSet | None
    share: float
    holdout: bool
    control: bool


class ServingStatus(BaseModel):
    """This process's view (other replicas converge within ``experiment_poll_seconds``)."""

    ready: bool = Field(description="Every arm's model version is loaded and users are assigned")
    versions: dict[str, str | None] = Field(description="Arm -> model version served now")
    loaded_bytes: dict[str, int] = Field(
        default_factory=dict, description="Extra model versions held for this experiment (artefact bytes)")
    error: str | None = None


class ExperimentOut(BaseModel):
    id: str
    name: str
    description: str
    status: Status
    variants: list[ArmOut]
    control: str
    traffic: list[float]
    endpoints: list[str]
    salt: str
    start_at: datetime
    stop_at: datetime | None
    stopped_at: datetime | None
    primary_metric: Metric
    attribution_window_seconds: float
    min_detectable_lift: float
    created_at: datetime
    updated_at: datetime
    serving: ServingStatus | None = None


# ---- reports ------------------------------------------------------------------------------
class Rate(BaseModel):
    value: float | None
    low: float | None = Field(description="95% interval")
    high: float | None


class Comparison(BaseModel):
    """This arm against the control on the primary metric."""

    lift: float | None = Field(description="Relative: arm / control - 1")
    low: float | None = Field(description="Always-valid 95% interval of the lift")
    high: float | None
    p_value: float | None = Field(description="Always-valid (mSPRT): may be read at any time")
    p_value_fixed_horizon: float | None = Field(
        description="Classical z-test; valid only if read once, at a sample size fixed in advance")
    probability_better: float | None = Field(
        description="Posterior probability that this arm beats the control (flat prior, "
        "normal approximation)")
    significant: bool
    exposures_needed: int | None = Field(
        description="About how many more exposures (all arms) until a lift of max(observed, "
        "min_detectable_lift) would be significant with 80% power")


class ArmReport(BaseModel):
    name: str
    control: bool
    share: float
    exposures: int = Field(description="Lists served (and displayed, where reported) to this arm")
    users: int
    clicked_exposures: int
    clicks: int = Field(description="Attributed positive interactions")
    conversions: int
    value: float
    ctr: Rate = Field(description="Clicked exposures / exposures (user-clustered interval)")
    conversion_rate: Rate = Field(description="Users with a conversion / users")
    value_per_user: Rate
    clicks_by_position: list[int] = Field(description="Attributed clicks at positions 1, 2, ...")
    model_versions: dict[str, int] = Field(description="Exposures per served model version")
    vs_control: Comparison | None = None


class Attribution(BaseModel):
    by_id: int = Field(description="Interactions that named the list (recommendation_id)")
    fallback: int = Field(description="Interactions without an id, credited to the user's latest list "
                          "holding the item within the window")
    unmatched_id: int = Field(description="Interactions naming a list they cannot be credited to "
                              "(unknown id, item not shown, other user, outside the window)")


class Srm(BaseModel):
    p_value: float | None
    mismatch: bool
    users: dict[str, int]
    expected_shares: dict[str, float]


class HistoryPoint(BaseModel):
    at: datetime
    exposures: int
    arm: str
    lift: float | None
    low: float | None
    high: float | None
    p_value: float | None


class ReportOut(BaseModel):
    experiment_id: str
    name: str
    status: Status
    primary_metric: Metric
    computed_at: datetime
    start: datetime
    end: datetime
    attribution_window_seconds: float
    method: str
    arms: list[ArmReport]
    attribution: Attribution
    srm: Srm
    decision: Literal["better", "worse", "no_difference_yet", "not_enough_data", "sample_ratio_mismatch"]
    verdict: str
    history: list[HistoryPoint] = Field(
        description="The comparison at earlier points, for the running-lift chart")


# ---- online metrics ------------------------------------------------------------------------
class OnlineDay(BaseModel):
    day: str
    model_version: str
    exposures: int
    clicked_exposures: int
    ctr: float | None
    conversions: int


class OnlineOut(BaseModel):
    computed_at: datetime
    days: int
    attribution_window_seconds: float
    rows: list[OnlineDay]
