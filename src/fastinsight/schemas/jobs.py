"""Operations jobs: the stored record of a run and the admin API's request and answers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The allowlist itself (argument models, command lines) is ops.jobs.kinds.JOB_KINDS; schemas
# import nothing above them, so the names are repeated here and a test keeps both in step.
JOB_NAMES_DOC = "One of: backup, cleanup_logs, monitor, restore, retrain."


class JobRecord(BaseModel):
    id: str
    name: str
    args: dict[str, Any]
    status: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    timeout_seconds: float
    output_tail: str = ""
    error: str | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> JobRecord:
        return cls.model_validate({**doc, "id": doc["_id"]})


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=64, description=JOB_NAMES_DOC)
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments of that job kind.")
    timeout_seconds: float | None = Field(
        default=None, gt=0, le=86_400, description="Override the kind's default timeout."
    )


class JobOut(JobRecord):
    """A job run; ``output_tail`` holds the last few thousand characters of its output."""


class JobList(BaseModel):
    items: list[JobOut]


class TrainStartedOut(BaseModel):
    """``POST /v1/admin/train``: the ``retrain`` job that was started and where to poll it."""

    job_id: str
    status: str
    poll: str
