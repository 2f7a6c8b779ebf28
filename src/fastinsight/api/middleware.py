"""ASGI middleware: request ids, access metrics, and the request-body size limit."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastinsight.errors import PayloadTooLarge
from fastinsight.observability import REQUEST_SECONDS, REQUESTS

log = logging.getLogger("fastinsight.access")


class RequestContextMiddleware:
    """Assigns ``X-Request-ID``, records Prometheus metrics per route template, logs access."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = incoming or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            REQUEST_SECONDS.labels(scope["method"], template).observe(elapsed)
            log.info(
                "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000,
                extra={"request_id": request_id, "route": template, "status": status},
            )


class BodyLimitMiddleware:
    """Rejects bodies over ``max_bytes`` with 413, by header or while streaming.

    A chunked body has no length to check up front: the count runs as the app reads.
    Past the limit the read raises, and whatever the app makes of that (FastAPI turns a
    failed body read into 400) is replaced by the 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        limit = self.max_bytes
        message = f"request body is larger than the limit of {limit} bytes"
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_413(scope, send, message)
            return
        seen = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise PayloadTooLarge(message)
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if exceeded:
                if msg["type"] == "http.response.start" and not started:
                    started = True
                    await _send_413(scope, send, message)
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except PayloadTooLarge:
            if started:
                raise
            await _send_413(scope, send, message)


async def _send_413(scope: Scope, send: Send, message: str) -> None:
    import json

    body = json.dumps({"error": "payload_too_large", "message": message, "details": [],
                       "request_id": scope.get("state", {}).get("request_id")}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
