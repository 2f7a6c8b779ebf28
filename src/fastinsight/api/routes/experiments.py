"""Experiments (admin), their reports, display reports and online metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from fastinsight.api.deps import ExperimentsDep, OnlineDep, TrackedDep
from fastinsight.schemas.core import ErrorBody
from fastinsight.schemas.experiments import (
    DisplayedBatchIn,
    DisplayedOut,
    ExperimentIn,
    ExperimentOut,
    ExperimentPatch,
    OnlineOut,
    ReportOut,
)

admin_router = APIRouter(prefix="/v1/admin/experiments", tags=["experiments"])
router = APIRouter(tags=["experiments"])
write_router = APIRouter(tags=["experiments"])

ExperimentId = Annotated[str, Path(min_length=1, max_length=64)]
DEFINITION_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "A version that cannot be served, a stop time already past"},
    404: {"model": ErrorBody, "description": "Unknown experiment, model version, or untrained algorithm"},
    409: {"model": ErrorBody, "description": "Overlaps another experiment, or changes a started one"},
    422: {"model": ErrorBody, "description": "Shares not summing to 1, duplicate arms, bad control..."},
}


@admin_router.post("", status_code=status.HTTP_201_CREATED, responses=DEFINITION_ERRORS)
def create_experiment(body: ExperimentIn, svc: ExperimentsDep) -> ExperimentOut:
    """Start (or schedule) an A/B test between model versions, algorithms and rule sets."""
    return svc.create(body)


@admin_router.get("")
def list_experiments(svc: ExperimentsDep) -> list[ExperimentOut]:
    return svc.list_all()


@admin_router.get("/{experiment_id}", responses=DEFINITION_ERRORS)
def get_experiment(experiment_id: ExperimentId, svc: ExperimentsDep) -> ExperimentOut:
    return svc.out(svc.get(experiment_id))


@admin_router.patch("/{experiment_id}", responses=DEFINITION_ERRORS)
def update_experiment(
    experiment_id: ExperimentId, body: ExperimentPatch, svc: ExperimentsDep
) -> ExperimentOut:
    """Rename, describe or reschedule the stop; arms and traffic only before the start."""
    return svc.update(experiment_id, body)


@admin_router.post("/{experiment_id}/stop", responses=DEFINITION_ERRORS)
def stop_experiment(experiment_id: ExperimentId, svc: ExperimentsDep) -> ExperimentOut:
    """Stop assigning users now; the report keeps counting clicks within the window."""
    return svc.stop(experiment_id)


@admin_router.delete("/{experiment_id}", status_code=status.HTTP_204_NO_CONTENT,
                     responses=DEFINITION_ERRORS)
def delete_experiment(experiment_id: ExperimentId, svc: ExperimentsDep) -> Response:
    """Delete a scheduled or stopped experiment (its impressions stay)."""
    svc.delete(experiment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/experiments", tags=["experiments"])
def experiments_overview(svc: ExperimentsDep) -> list[ExperimentOut]:
    """The experiments (read-only), for dashboards."""
    return svc.list_all()


@router.get("/v1/experiments/{experiment_id}/report", responses=DEFINITION_ERRORS)
def experiment_report(
    experiment_id: ExperimentId, svc: ExperimentsDep,
    fresh: Annotated[bool, Query(description="Compute now rather than answer from a report up to "
                                 "report_cache_seconds old")] = False,
) -> ReportOut:
    """Exposures, attributed clicks and conversions per arm, intervals, lift over the control
    (always-valid p-value), a sample-ratio check and a verdict in plain words."""
    return svc.report(experiment_id, fresh)


@write_router.post("/v1/impressions")
def report_displayed(body: DisplayedBatchIn, svc: TrackedDep) -> DisplayedOut:
    """Which items of each answer were actually displayed, when fewer than were served."""
    return svc.displayed(body)


@router.get("/v1/insights/online", tags=["insights"])
def online_metrics(
    svc: OnlineDep, days: Annotated[int, Query(ge=1, le=90, description="Window length in days")] = 14,
) -> OnlineOut:
    """Click-through of served recommendation lists per model version per day."""
    return svc.ctr_by_version(days)
