"""Response hardening: the security headers of every answer (added by
``api.middleware.RequestContextMiddleware``), loopback-only development mode, and truthful
``405``/``OPTIONS`` answers (``Allow`` lists every method of the path)."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from fastinsight.api.keys import is_loopback
from fastinsight.config import Settings

# The dashboard loads only its own files (Chart.js is served from /dashboard/vendor).
DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from jsDelivr and start them
# with an inline script; they show no user data.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# JSON, CSV and metrics answers are data, never pages: nothing may load or frame them.
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_PATHS = ("/docs", "/redoc")


_FIXED = ((b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
          (b"referrer-policy", b"no-referrer"))
_DATA = ((b"content-security-policy", DATA_CSP.encode()), *_FIXED)
_DOCS = ((b"content-security-policy", DOCS_CSP.encode()), *_FIXED)
_DASHBOARD = ((b"content-security-policy", DASHBOARD_CSP.encode()), *_FIXED)


def security_headers(path: str, content_type: bytes) -> tuple[tuple[bytes, bytes], ...]:
    """CSP, X-Frame-Options, X-Content-Type-Options and Referrer-Policy for an answer to
    ``path`` of ``content_type`` (added to every answer by ``RequestContextMiddleware``)."""
    if not content_type.startswith(b"text/html"):
        return _DATA
    return _DOCS if path.startswith(DOCS_PATHS) else _DASHBOARD


class LoopbackOnlyMiddleware:
    """Development mode: 403 for any client not on this machine."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client and not is_loopback(str(client[0])):
            body = json.dumps({
                "error": "forbidden", "details": [], "request_id": None,
                "message": "this server runs in development mode and answers loopback clients only",
            }).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method the routes of this request's path accept (routes of one path are
    declared one per method, so the router's own ``Allow`` names only the first). A
    fixed path (``/v1/items/import``) is its own resource even where a template
    (``/v1/items/{item_id}``) matches it too."""
    by_template: dict[str, set[str]] = {}
    for route in iter_route_contexts(app.routes):
        match, _ = route.matches({**scope, "method": "GET"})
        if match is Match.NONE:
            continue
        template = str(route.path_format or route.path or "")
        # Mounted static files have no methods: they answer GET and HEAD.
        by_template.setdefault(template, set()).update(route.methods or {"GET", "HEAD"})
    fixed = [t for t in by_template if "{" not in t]
    chosen = fixed or list(by_template)
    return sorted(set().union(*(by_template[t] for t in chosen)))


def install_hardening(app: FastAPI, settings: Settings) -> None:
    """Development mode's loopback-only guard, outside everything else. (The security
    headers are added with the request id, see ``api.middleware``.)"""
    if settings.dev_mode:
        app.add_middleware(LoopbackOnlyMiddleware)
