"""API-key checks: every non-health route needs ``X-API-Key``; admin routes the admin key."""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

if TYPE_CHECKING:
    from fastinsight.api.composition import Services

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


class Scope(StrEnum):
    READ_WRITE = "api"
    ADMIN = "admin"


def secret_bytes(secret: SecretStr | None) -> bytes:
    """The key to compare with; an unset key (refused at start-up, see ``api.keys``)
    matches nothing, since an empty header is refused first."""
    return secret.get_secret_value().encode() if secret is not None else b""


def scope_for_key(request: Request, key: str | None) -> Scope:
    """The scope of ``key``: 401 when it is missing or unknown."""
    if not key:
        raise HTTPException(401, "missing X-API-Key header", headers={"WWW-Authenticate": "ApiKey"})
    services: Services = request.app.state.services
    settings = services.settings
    given = key.encode()
    if secrets.compare_digest(given, secret_bytes(settings.admin_key)):
        return Scope.ADMIN
    if secrets.compare_digest(given, secret_bytes(settings.api_key)):
        return Scope.READ_WRITE
    raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "ApiKey"})


async def require_api_key(
    request: Request, key: Annotated[str | None, Security(_header)] = None
) -> Scope:
    return scope_for_key(request, key)


async def require_admin(request: Request, key: Annotated[str | None, Security(_header)] = None) -> Scope:
    scope = scope_for_key(request, key)
    if scope is not Scope.ADMIN:
        raise HTTPException(403, "this route needs the admin key")
    return scope


def authorize(request: Request) -> Scope:
    """``require_api_key`` for a route that reads its request itself (no dependency to
    resolve). Such a route declares ``API_KEY_DOCS`` so OpenAPI still shows the scheme."""
    return scope_for_key(request, request.headers.get("x-api-key"))


API_KEY_DOCS: dict[str, object] = {"security": [{"APIKeyHeader": []}]}

ApiKeyDep = Annotated[Scope, Depends(require_api_key)]
AdminDep = Annotated[Scope, Depends(require_admin)]
