"""Maps every failure to the one error body shape (:class:`fastinsight.schemas.core.ErrorBody`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pymongo.errors import ConnectionFailure, PyMongoError, ServerSelectionTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from fastinsight.api.hardening import allowed_methods
from fastinsight.errors import FastInsightError, RetryLater
from fastinsight.schemas.core import ErrorBody

log = logging.getLogger(__name__)

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                 415: "unsupported_media_type", 422: "validation_failed", 429: "too_many_requests"}


def error_response(
    status: int, code: str, message: str, request: Request,
    details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(
        error=code, message=message, details=details or [],
        request_id=getattr(request.state, "request_id", None),
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"} and len(parts) > 1:
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "body"


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _body_unread(exc: RequestValidationError, content_type: str | None) -> bool:
    """FastAPI reads a body that is not declared JSON as missing: say what is wrong."""
    return not _is_json(content_type) and any(
        tuple(err.get("loc", ()))[:1] == ("body",) for err in exc.errors())


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FastInsightError)
    async def _domain(request: Request, exc: FastInsightError) -> JSONResponse:
        headers = None
        if isinstance(exc, RetryLater):
            headers = {"Retry-After": str(exc.retry_after)}
        return error_response(exc.status, exc.code, exc.message, request, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if _body_unread(exc, request.headers.get("content-type")):
            return error_response(
                415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)",
                request, [{"field": "Content-Type", "message": "expected application/json"}],
            )
        details = []
        for err in exc.errors():
            message = err.get("msg", "invalid")
            if err.get("type") == "json_invalid":
                message = f"body is not valid JSON: {err.get('ctx', {}).get('error', message)}"
            elif err.get("type") == "extra_forbidden":
                message = "unknown field"
            details.append({"field": _loc(tuple(err.get("loc", ()))), "message": message})
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return error_response(422, "validation_failed", f"invalid request: {summary}", request,
                              details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        message = str(exc.detail)
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
            message = "the JSON body is nested too deeply to decode"
        if exc.status_code == 405:
            allow = ", ".join(allowed_methods(request.app, request.scope))
            if request.method == "OPTIONS":
                return Response(status_code=204, headers={"Allow": f"{allow}, OPTIONS"})
            headers = {**(headers or {}), "Allow": allow}
        code = _STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, message, request, headers=headers)

    @app.exception_handler(PyMongoError)
    async def _database(request: Request, exc: PyMongoError) -> JSONResponse:
        from fastinsight.observability import DB_ERRORS

        DB_ERRORS.labels(operation=exc.__class__.__name__).inc()
        if isinstance(exc, ConnectionFailure | ServerSelectionTimeoutError):
            log.warning("database unavailable: %s", exc.__class__.__name__)
            return error_response(503, "unavailable",
                                  "the database is unreachable; retry shortly", request,
                                  headers={"Retry-After": "5"})
        log.exception("database error")
        return error_response(500, "database_error", "a database operation failed", request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "an internal error occurred", request)
