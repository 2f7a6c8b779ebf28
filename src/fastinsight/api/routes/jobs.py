"""Operations jobs (admin key): start an allowlisted job, read its status, list recent runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from fastinsight.api.deps import JobsDep
from fastinsight.api.security import require_admin
from fastinsight.schemas.jobs import JobIn, JobList, JobOut

router = APIRouter(prefix="/v1/admin/jobs", tags=["jobs"], dependencies=[Depends(require_admin)])
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


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
        str | None, Query(alias="status", pattern=r"^(queued|running|succeeded|failed|timed_out)$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    records = jobs.recent(name=name, status=job_status, limit=limit)
    return JobList(items=[JobOut.model_validate(r.model_dump()) for r in records])


@router.get("/{job_id}")
def get_job(job_id: JobId, jobs: JobsDep) -> JobOut:
    return JobOut.model_validate(jobs.get(job_id).model_dump())
