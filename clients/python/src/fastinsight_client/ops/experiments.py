"""A/B experiments (admin), the read-only list, and reports (API key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastinsight_client._call import NO_CONTENT, Call, Route, list_of, model
from fastinsight_client.models import ExperimentIn, ExperimentOut, ExperimentPatch, ReportOut

LIST = Route("GET", "/v1/admin/experiments", list_of(ExperimentOut))
CREATE = Route("POST", "/v1/admin/experiments", model(ExperimentOut), body="ExperimentIn", idempotent=False)
GET = Route("GET", "/v1/admin/experiments/{experiment_id}", model(ExperimentOut))
UPDATE = Route("PATCH", "/v1/admin/experiments/{experiment_id}", model(ExperimentOut),
               body="ExperimentPatch")
DELETE = Route("DELETE", "/v1/admin/experiments/{experiment_id}", NO_CONTENT)
STOP = Route("POST", "/v1/admin/experiments/{experiment_id}/stop", model(ExperimentOut))
OVERVIEW = Route("GET", "/v1/experiments", list_of(ExperimentOut))
REPORT = Route("GET", "/v1/experiments/{experiment_id}/report", model(ReportOut), query=("fresh",))


def list_experiments() -> Call[list[ExperimentOut]]:
    """Admin: every experiment with this process's serving state."""
    return LIST.call()


def create_experiment(experiment: ExperimentIn | Mapping[str, Any]) -> Call[ExperimentOut]:
    """Admin: start (or schedule) an A/B test; 409 if it overlaps another."""
    return CREATE.call(json_body=experiment)


def get_experiment(experiment_id: str) -> Call[ExperimentOut]:
    return GET.call({"experiment_id": experiment_id})


def update_experiment(experiment_id: str, patch: ExperimentPatch | Mapping[str, Any]) -> Call[ExperimentOut]:
    """Admin: rename, describe, reschedule the stop; arms and traffic only before the start."""
    return UPDATE.call({"experiment_id": experiment_id}, json_body=patch)


def delete_experiment(experiment_id: str) -> Call[None]:
    """Admin: delete a scheduled or stopped experiment."""
    return DELETE.call({"experiment_id": experiment_id})


def stop_experiment(experiment_id: str) -> Call[ExperimentOut]:
    return STOP.call({"experiment_id": experiment_id})


def experiments() -> Call[list[ExperimentOut]]:
    """The experiments, read-only (API key)."""
    return OVERVIEW.call()


def experiment_report(experiment_id: str, fresh: bool | None = None) -> Call[ReportOut]:
    """Exposures, attributed clicks and conversions per arm, lift, verdict."""
    return REPORT.call({"experiment_id": experiment_id}, {"fresh": fresh})
