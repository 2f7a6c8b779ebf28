"""API-key checks. Every non-public route needs ``X-API-Key``; the key alone names the
tenant (no route takes a tenant from the client) and its scope:

- ``tracking``: send events and read recommendations (``TRACKING_ROUTES``), for pages;
- ``api``: every data and recommendation route of its tenant;
- ``admin``: also the tenant's admin and job routes;
- ``operator`` (``FASTINSIGHT_OPERATOR_KEY``): the operator routes only, no tenant data.

The check stores the :class:`Principal` on ``request.state``; ``api.deps`` resolves the
tenant's services from it, and fails closed (401) on a route that set none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from fastinsight.services.tenancy.keys import Principal, Scope

if TYPE_CHECKING:
    from fastinsight.api.deployment import Deployment

__all__ = ["API_KEY_DOCS", "AdminDep", "ApiKeyDep", "OperatorDep", "Principal", "Scope",
           "authorize", "principal_for", "require_admin", "require_api_key", "require_operator"]

_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")

# (method, route template) a tracking key may call: what a shop's pages send and show.
TRACKING_ROUTES = frozenset({
    ("POST", "/v1/interactions"), ("POST", "/v1/interactions/batch"), ("POST", "/v1/beacon"),
    ("POST", "/v1/impressions"), ("GET", "/v1/users/{user_id}/recommendations"),
    ("GET", "/v1/items/trending"), ("GET", "/v1/items/{item_id}/similar"),
    ("POST", "/v1/recommendations/session"),
})


def deployment_of(request: Request) -> Deployment:
    deployment: Deployment = request.app.state.deployment
    return deployment


def principal_for(request: Request, key: str | None) -> Principal:
    """Authenticate ``key`` (401/403/429, see ``Deployment.authorize``) and remember the
    principal for the request."""
    principal = deployment_of(request).authorize(key)
    request.state.principal = principal
    return principal


def _route_template(request: Request) -> tuple[str, str]:
    route = request.scope.get("route")
    return request.method, str(getattr(route, "path", request.url.path))


def tenant_principal(request: Request, key: str | None) -> Principal:
    """A tenant's principal allowed on this route (the operator and, off its routes, the
    tracking key get 403)."""
    principal = principal_for(request, key)
    if principal.scope is Scope.OPERATOR:
        raise HTTPException(403, "the operator key manages tenants (/v1/operator/) and reads no "
                                 "tenant's data; use one of the tenant's keys")
    if principal.scope is Scope.TRACKING and _route_template(request) not in TRACKING_ROUTES:
        raise HTTPException(403, "a tracking key may only send events and read recommendations")
    return principal


async def require_api_key(
    request: Request, key: Annotated[str | None, Security(_header)] = None
) -> Principal:
    return tenant_principal(request, key)


async def require_admin(
    request: Request, key: Annotated[str | None, Security(_header)] = None
) -> Principal:
    principal = tenant_principal(request, key)
    if principal.scope is not Scope.ADMIN:
        raise HTTPException(403, "this route needs the admin key")
    return principal


async def require_operator(
    request: Request, key: Annotated[str | None, Security(_header)] = None
) -> Principal:
    principal = principal_for(request, key)
    if principal.scope is not Scope.OPERATOR:
        raise HTTPException(403, "this route needs the operator key (FASTINSIGHT_OPERATOR_KEY)")
    return principal


def authorize(request: Request) -> Principal:
    """``require_api_key`` for a route that reads its request itself (no dependency to
    resolve). Such a route declares ``API_KEY_DOCS`` so OpenAPI still shows the scheme."""
    return tenant_principal(request, request.headers.get("x-api-key"))


API_KEY_DOCS: dict[str, object] = {"security": [{"APIKeyHeader": []}]}

ApiKeyDep = Annotated[Principal, Depends(require_api_key)]
AdminDep = Annotated[Principal, Depends(require_admin)]
OperatorDep = Annotated[Principal, Depends(require_operator)]
