"""Admin: model versions (list, activate/rollback) and background training."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from fastinsight.api.deps import ContainerDep
from fastinsight.errors import NotFoundError, Unavailable
from fastinsight.recsys import registry
from fastinsight.schemas.recs import ModelVersionOut, TrainIn
from fastinsight.services.training.pipeline import check_and_activate
from fastinsight.storage.mongo.models import ModelVersionRepository

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def _out(doc: dict[str, Any], active: str | None) -> ModelVersionOut:
    return ModelVersionOut(
        version=doc["version"], algorithm=doc["algorithm"], status=doc.get("status", "ready"),
        active=doc["version"] == active, created_at=doc["created_at"], params=doc.get("params", {}),
        metrics=doc.get("metrics", {}), snapshot=doc.get("snapshot", {}),
        fit_seconds=doc.get("fit_seconds"), duration_seconds=doc.get("duration_seconds"),
        reason=doc.get("reason"),
    )


@router.get("/models")
def list_models(container: ContainerDep) -> list[ModelVersionOut]:
    repo = ModelVersionRepository(container.db)
    active = repo.active_version()
    return [_out(d, active) for d in repo.list()]


@router.post("/models/{version}/activate")
def activate_model(
    version: Annotated[str, Path(min_length=1, max_length=100)], container: ContainerDep
) -> ModelVersionOut:
    """Switch every replica to this version (also used for rollback)."""
    repo = ModelVersionRepository(container.db)
    doc = repo.get(version)
    if doc is None:
        raise NotFoundError(f"model version {version!r} does not exist")
    check_and_activate(container.db, container.settings, version, "activated through the API")
    manager = container.extras.get("models")
    if manager is not None:
        manager.sync()
    return _out(doc, version)


@router.post("/train", status_code=202)
def start_training(body: TrainIn, request: Request, container: ContainerDep) -> dict[str, Any]:
    """Train in the background (a `retrain` job); returns the job id to poll."""
    registry.get_algorithm(body.algorithm)
    jobs = container.extras.get("jobs")
    if jobs is None:
        raise Unavailable("the job runner is not enabled in this process")
    record = jobs.submit("retrain", {"algorithm": body.algorithm}, requested_by="api")
    return {"job_id": record.id, "status": record.status, "poll": f"/v1/admin/jobs/{record.id}"}
