"""ASGI middleware: what every answer carries (request id, security headers, metrics,
access log) and the request-body size limit."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastinsight.api.errors import error_response
from fastinsight.api.hardening import security_headers
from fastinsight.errors import PayloadTooLarge
from fastinsight.observability import REQUEST_SECONDS, REQUESTS

log = logging.getLogger("fastinsight.access")
error_log = logging.getLogger("fastinsight.api.errors")


class RequestContextMiddleware:
    """One send wrapper for what every HTTP answer carries: the ``X-Request-ID`` (the
    caller's, up to 64 characters, or a new one), the security headers (CSP by path and
    content type, X-Frame-Options, X-Content-Type-Options, Referrer-Policy), Prometheus
    metrics per route template, and an access log line.

    One wrapper instead of two: each layer of ASGI middleware is another coroutine call
    and another closure per message on every request, the hottest included. The metric
    children are kept per label set, so a request skips prometheus_client's locked
    ``labels()`` lookup."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._counters: dict[tuple[str, str, str], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = b""
        for name, value in scope.get("headers") or ():
            if name == b"x-request-id":
                incoming = value
        # Printable ASCII only (a header is bytes; anything else would come back garbled).
        printable = incoming[:64]
        if not all(0x21 <= byte <= 0x7E for byte in printable):
            printable = b""
        request_id = printable.decode("ascii") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = message.setdefault("headers", [])
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(security_headers(scope["path"], content_type))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if status:  # the answer has begun: nothing else can be sent
                raise
            # Answered here, not by the catch-all handler: Starlette runs that one in its
            # outermost layer, which raises again after answering, and uvicorn then
            # closes the keep-alive connection under the client.
            request = Request(scope)
            error_log.exception("unhandled error on %s %s", request.method, request.url.path)
            await error_response(500, "internal_error", "an internal error occurred",
                                 request)(scope, receive, send_wrapper)
        finally:
            status = status or 500
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self._counter(method, template, str(status)).inc()
            self._timer(method, template).observe(elapsed)
            log.info(
                "%s %s %d %.1fms", method, scope["path"], status, elapsed * 1000,
                extra={"request_id": request_id, "route": template, "status": status},
            )

    def _counter(self, method: str, template: str, status: str) -> Any:
        key = (method, template, status)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = REQUESTS.labels(method, template, status)
        return child

    def _timer(self, method: str, template: str) -> Any:
        key = (method, template)
        child = self._timers.get(key)
        if child is None:
            child = self._timers[key] = REQUEST_SECONDS.labels(method, template)
        return child


BEACON_MAX_BYTES = 64 * 1024
"""What ``navigator.sendBeacon`` carries at most in every browser."""


class BodyLimitMiddleware:
    """Rejects bodies over the path's limit with 413, by header or while streaming.

    File imports (paths ending in ``/import``) may send ``max_bytes``; the beacon 64 KiB;
    every other route ``max_json_bytes``. A JSON body is decoded before the route's key
    check runs, on the event loop, so the smaller bound is what one unauthenticated
    request can cost every other request of the process.

    A chunked body has no length to check up front: the count runs as the app reads.
    Past the limit the read raises, and whatever the app makes of that (FastAPI turns a
    failed body read into 400) is replaced by the 413."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_json_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_bytes = min(max_json_bytes or max_bytes, max_bytes)

    def limit(self, path: str) -> int:
        if path.endswith("/import"):
            return self.max_bytes
        if path == "/v1/beacon":
            return min(BEACON_MAX_BYTES, self.max_json_bytes)
        return self.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        limit = self.limit(scope["path"])
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
