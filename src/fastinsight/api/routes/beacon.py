"""``POST /v1/beacon``: the events a shop's page sends while it is being left.

``navigator.sendBeacon`` is the one request a browser still delivers after the page is
gone, and it cannot set headers: the API key travels in the body, as JSON sent as
``text/plain`` (a type that needs no CORS preflight, which a closing page could not
wait for). Only the API key is accepted. A beacon carrying the admin key is refused
with 403: that key must never be in a page, and refusing it makes the mistake loud.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from fastinsight.api.deps import get_ingest, require_writable
from fastinsight.api.security import Scope, tenant_principal
from fastinsight.errors import UnsupportedMediaType, ValidationFailed
from fastinsight.schemas.core import BeaconIn, ImportReport
from fastinsight.services.data.parsing import rows_from_objects

router = APIRouter(tags=["interactions"])
MEDIA_TYPES = ("text/plain", "application/json")
# The schema itself is added to the document's components by ``api.openapi``.
_SCHEMA = {"$ref": "#/components/schemas/BeaconIn"}
BEACON_DOC: dict[str, Any] = {
    "required": True,
    "description": "JSON, sent as text/plain (what navigator.sendBeacon sends for a string) or "
    "application/json.",
    "content": {media: {"schema": _SCHEMA} for media in MEDIA_TYPES},
}


def parse_beacon(raw: bytes, content_type: str | None) -> BeaconIn:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {media or '(none)'!r} is not accepted here; send text/plain or application/json",
            details=[{"field": "Content-Type", "message": "expected text/plain or application/json"}])
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed.field("body", f"not valid JSON: {exc.__class__.__name__}") from None
    try:
        return BeaconIn.model_validate(value)
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
                   for err in exc.errors(include_url=False)]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        raise ValidationFailed(f"invalid beacon: {summary}", details=details) from None


@router.post("/v1/beacon", openapi_extra={"requestBody": BEACON_DOC, "security": []})
async def beacon(request: Request) -> ImportReport:
    """Record up to 1,000 events like `POST /v1/interactions/batch`; the key is the body's
    `key` (an API or tracking key of the tenant)."""
    body = await run_in_threadpool(parse_beacon, await request.body(), request.headers.get("content-type"))
    if tenant_principal(request, body.key).scope is Scope.ADMIN:
        raise HTTPException(403, "the admin key is refused here: it must never be sent from a browser")
    await require_writable(request)
    ingest = await get_ingest(request)
    rows = rows_from_objects(body.interactions)
    return await run_in_threadpool(ingest.import_interactions, rows, realtime=True)
