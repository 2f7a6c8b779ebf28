"""Interactions: post one or a batch (real-time path), list a user's, import files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status

from fastinsight.api.deps import CatalogDep, IngestDep, SettingsDep
from fastinsight.api.routes._imports import IMPORT_DOC, FirstRow, run_import
from fastinsight.errors import ValidationFailed
from fastinsight.schemas.core import ImportReport, InteractionBatchIn, InteractionIn, InteractionOut
from fastinsight.schemas.types import DateTimeParam
from fastinsight.services.data.parsing import rows_from_objects

router = APIRouter(tags=["interactions"])


@router.post("/v1/interactions", status_code=status.HTTP_201_CREATED)
def post_interaction(body: InteractionIn, svc: IngestDep) -> ImportReport:
    """Record one event. It changes the user's next recommendations without retraining."""
    report = svc.import_interactions(
        rows_from_objects([body.model_dump(exclude_none=True)]), realtime=True
    )
    if report.rejected:
        raise ValidationFailed(
            "; ".join(f"{e.field}: {e.message}" for e in report.rejected[0].errors),
            details=[e.model_dump() for e in report.rejected[0].errors],
        )
    return report


@router.post("/v1/interactions/batch")
def post_interactions(body: InteractionBatchIn, svc: IngestDep) -> ImportReport:
    """Record up to 10,000 events; valid ones are stored, invalid ones reported by row."""
    rows = rows_from_objects(body.interactions)
    return svc.import_interactions(rows, realtime=True)


@router.post("/v1/interactions/import", openapi_extra={"requestBody": IMPORT_DOC})
async def import_interactions(
    request: Request, svc: IngestDep, settings: SettingsDep, first_row: FirstRow = 1
) -> ImportReport:
    """Bulk load (backfill). Picked up by the next training run."""
    return await run_import(request, "interactions", svc.import_interactions,
                            settings.max_body_bytes, first_row)


@router.get("/v1/users/{user_id}/interactions")
def user_interactions(
    user_id: Annotated[str, Path(min_length=1, max_length=128)],
    svc: CatalogDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[DateTimeParam | None, Query(description="Only events before this time")] = None,
) -> list[InteractionOut]:
    """The user's interactions, newest first (page with `before`)."""
    return svc.user_interactions(user_id, limit, before)
