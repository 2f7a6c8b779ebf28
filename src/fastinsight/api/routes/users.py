"""Users: upsert, read, patch, erase, list, import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from fastinsight.api.deps import CatalogDep, IngestDep, SettingsDep
from fastinsight.api.routes._imports import IMPORT_DOC, FirstRow, run_import
from fastinsight.schemas.core import DeletedOut, ImportReport, Page, UserIn, UserOut, UserPatch

router = APIRouter(prefix="/v1/users", tags=["users"])
UserId = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={200: {"model": UserOut}})
def upsert_user(body: UserIn, svc: CatalogDep, response: Response) -> UserOut:
    user, created = svc.upsert_user(body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return user


@router.get("")
def list_users(
    svc: CatalogDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> Page[UserOut]:
    return svc.list_users(limit, cursor)


@router.post("/import", openapi_extra={"requestBody": IMPORT_DOC})
async def import_users(
    request: Request, svc: IngestDep, settings: SettingsDep, first_row: FirstRow = 1
) -> ImportReport:
    return await run_import(request, "users", svc.import_users, settings.max_body_bytes, first_row)


@router.get("/{user_id}")
def get_user(user_id: UserId, svc: CatalogDep) -> UserOut:
    return svc.get_user(user_id)


@router.patch("/{user_id}")
def patch_user(user_id: UserId, body: UserPatch, svc: CatalogDep) -> UserOut:
    return svc.patch_user(user_id, body.attributes)


@router.delete("/{user_id}")
def delete_user(user_id: UserId, svc: CatalogDep) -> DeletedOut:
    """Erase the user and all of their interactions."""
    return svc.delete_user(user_id)
