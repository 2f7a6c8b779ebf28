"""Health probes, model versions, training and allowlisted jobs (admin key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import JsonValue

from fastinsight_client._call import Call, Route, list_of, model
from fastinsight_client.models import (
    Health,
    JobIn,
    JobList,
    JobOut,
    ModelVersionOut,
    TrainIn,
    TrainStartedOut,
)

LIVE = Route("GET", "/health/live", model(Health))
READY = Route("GET", "/health/ready", model(Health), retry_unavailable=False)
LIST_MODELS = Route("GET", "/v1/admin/models", list_of(ModelVersionOut))
ACTIVATE_MODEL = Route("POST", "/v1/admin/models/{version}/activate", model(ModelVersionOut))
TRAIN = Route("POST", "/v1/admin/train", model(TrainStartedOut), body="TrainIn", idempotent=False)
START_JOB = Route("POST", "/v1/admin/jobs", model(JobOut), body="JobIn", idempotent=False)
LIST_JOBS = Route("GET", "/v1/admin/jobs", model(JobList), query=("name", "status", "limit"))
GET_JOB = Route("GET", "/v1/admin/jobs/{job_id}", model(JobOut))

JobStatus = Literal["running", "succeeded", "failed", "timed_out"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "timed_out"})


def live() -> Call[Health]:
    """The process answers (no database involved)."""
    return LIVE.call()


def ready() -> Call[Health]:
    """The database answers; raises ``UnavailableError`` (not retried) when it does not."""
    return READY.call()


def list_models() -> Call[list[ModelVersionOut]]:
    return LIST_MODELS.call()


def activate_model(version: str) -> Call[ModelVersionOut]:
    """Switch every replica to this version (also a rollback)."""
    return ACTIVATE_MODEL.call({"version": version})


def train(algorithm: str | None = None, params: Mapping[str, JsonValue] | None = None,
          activate: bool | None = None) -> Call[TrainStartedOut]:
    """Start a training job; poll it with ``get_job`` or ``wait_for_job``."""
    body = {"algorithm": algorithm, "params": None if params is None else dict(params), "activate": activate}
    return TRAIN.call(json_body=TrainIn.model_validate({k: v for k, v in body.items() if v is not None}))


def start_job(job: JobIn | Mapping[str, Any]) -> Call[JobOut]:
    """Start an allowlisted job, e.g. ``{"name": "backup", "args": {"keep": 7}}``."""
    return START_JOB.call(json_body=job)


def list_jobs(name: str | None = None, status: JobStatus | None = None,
              limit: int | None = None) -> Call[JobList]:
    return LIST_JOBS.call(query={"name": name, "status": status, "limit": limit})


def get_job(job_id: str) -> Call[JobOut]:
    return GET_JOB.call({"job_id": job_id})
