"""Admin: model versions (list, activate/rollback) and background training."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from fastinsight.api.deps import JobsDep, ModelAdminDep
from fastinsight.recsys import registry
from fastinsight.schemas.jobs import TrainStartedOut
from fastinsight.schemas.recs import ModelVersionOut, TrainIn

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/models")
def list_models(admin: ModelAdminDep) -> list[ModelVersionOut]:
    return admin.list_versions()


@router.post("/models/{version}/activate")
def activate_model(
    version: Annotated[str, Path(min_length=1, max_length=100)], admin: ModelAdminDep
) -> ModelVersionOut:
    """Switch every replica to this version (also used for rollback)."""
    return admin.activate(version)


@router.post("/train", status_code=status.HTTP_202_ACCEPTED)
def start_training(body: TrainIn, jobs: JobsDep) -> TrainStartedOut:
    """Train in the background (a `retrain` job); returns the job id to poll. With
    `"activate": false` the new version is stored but serving keeps the active one."""
    # 422 naming the body's field (algorithm, params.<name>) before a job starts; without
    # an algorithm, the job's own check validates against the (tenant's) default one.
    if body.algorithm is not None:
        registry.validate_params(body.algorithm, body.params, strict=True)
    record = jobs.submit("retrain", {"algorithm": body.algorithm, "params": body.params,
                                     "activate": body.activate}, requested_by="api")
    return TrainStartedOut(job_id=record.id, status=record.status,
                           poll=f"/v1/admin/jobs/{record.id}")
