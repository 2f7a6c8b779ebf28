"""Operations jobs (admin key): start an allowlisted job, read its status, list recent runs."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from fastinsight.api.container import Container
from fastinsight.api.security import require_admin
from fastinsight.errors import Unavailable
from fastinsight.ops.jobs.kinds import JOB_KINDS
from fastinsight.ops.jobs.runner import JobRecord, JobService
from fastinsight.ops.maintenance import WriteGate
from fastinsight.ops.settings import OpsSettings
from fastinsight.storage.mongo.jobs import JobStore

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/admin/jobs", tags=["jobs"], dependencies=[Depends(require_admin)])
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description=f"One of: {', '.join(sorted(JOB_KINDS))}.")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments of that job kind.")
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=86_400, description="Override the kind's default timeout."
    )


class JobOut(JobRecord):
    """A job run; ``output_tail`` holds the last few thousand characters of its output."""


class JobList(BaseModel):
    items: list[JobOut]


async def get_jobs(request: Request) -> JobService:
    service: JobService | None = request.app.state.container.extras.get("jobs")
    if service is None:
        raise Unavailable("the job runner is not available")
    return service


JobsDep = Annotated[JobService, Depends(get_jobs)]


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_job(body: JobIn, jobs: JobsDep) -> JobOut:
    """Start a job; 409 while another job of the same kind runs, 422 for unknown names/args."""
    record = jobs.submit(body.name, body.args, timeout_seconds=body.timeout_seconds)
    return JobOut.model_validate(record.model_dump())


@router.get("")
def list_jobs(
    jobs: JobsDep,
    name: Annotated[str | None, Query(max_length=64)] = None,
    job_status: Annotated[
        str | None, Query(alias="status", pattern=r"^(running|succeeded|failed|timed_out)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    records = jobs.recent(name=name, status=job_status, limit=limit)
    return JobList(items=[JobOut.model_validate(r.model_dump()) for r in records])


@router.get("/{job_id}")
def get_job(job_id: JobId, jobs: JobsDep) -> JobOut:
    return JobOut.model_validate(jobs.get(job_id).model_dump())


def install(app: FastAPI) -> None:
    """Add the router and the lifespan hooks that own the process's :class:`JobService`."""
    app.include_router(router)

    def start(container: Container) -> None:
        service = JobService(JobStore(container.db), settings=container.settings, ops=OpsSettings())
        container.extras["jobs"] = service
        container.extras["write_gate"] = WriteGate(container.db)
        try:
            service.recover_stale()
        except Exception as exc:  # the database may be down at start-up; serve anyway
            log.warning("jobs: could not recover stale jobs: %s", exc.__class__.__name__)

    def stop(container: Container) -> None:
        service = container.extras.get("jobs")
        if isinstance(service, JobService):
            service.shutdown()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
