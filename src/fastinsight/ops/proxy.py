"""A small HTTP reverse proxy in front of the API, for deploys without dropped requests.

It is an ASGI app served by uvicorn on the public port. Each request is forwarded to
the backend named in a state file (``active_url``), re-read at most every
``check_interval`` seconds and on every ``/__proxy/status`` call. Switching means
rewriting that file: new requests go to the new backend while requests already in
flight finish on the old one; once none is left the proxy closes its keep-alive
connections to the old backend, so stopping it cannot race a reused idle connection.
Client connections to the proxy never break during a switch.

In production the same role can be played by nginx/Caddy/HAProxy (rewrite the upstream
and reload); this one exists so a single host needs nothing beyond Python.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STATUS_PATH = "/__proxy/status"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
_LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}


def read_state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class SwitchingProxy:
    def __init__(self, state_path: Path, *, timeout: float = 120.0, check_interval: float = 0.1) -> None:
        self.state_path = state_path
        self.timeout = timeout
        self.check_interval = check_interval
        self.active: str | None = None
        self.generation = 0
        self.inflight: Counter[str] = Counter()
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._checked = float("-inf")
        self._mtime: int | None = None

    # ---- target selection ------------------------------------------------------------
    def refresh(self, force: bool = False) -> str | None:
        now = time.monotonic()
        if not force and now - self._checked < self.check_interval:
            return self.active
        self._checked = now
        try:
            mtime = self.state_path.stat().st_mtime_ns
        except OSError:
            return self.active
        if mtime != self._mtime:
            self._mtime = mtime
            state = read_state(self.state_path)
            url = state.get("active_url")
            if isinstance(url, str) and url != self.active:
                log.info("proxy: switching %s -> %s", self.active, url)
                self.active = url
            self.generation = int(state.get("generation", 0))
        return self.active

    def _client(self, target: str) -> httpx.AsyncClient:
        client = self._clients.get(target)
        if client is None:
            client = httpx.AsyncClient(
                base_url=target,
                timeout=httpx.Timeout(self.timeout, connect=5.0),
                limits=httpx.Limits(max_connections=500, max_keepalive_connections=100),
            )
            self._clients[target] = client
        return client

    async def _release(self, target: str) -> None:
        self.inflight[target] -= 1
        await self._close_drained()

    async def _close_drained(self) -> None:
        """Close the connection pools of former backends with no request in flight."""
        for target in [t for t in self._clients if t != self.active]:
            if self.inflight[target] <= 0:
                del self.inflight[target]
                await self._clients.pop(target).aclose()
                log.info("proxy: drained %s", target)

    # ---- ASGI --------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["path"] == STATUS_PATH:
            await self._status(scope, send)
            return
        target = self.refresh()
        if target is None:
            await _plain(send, 503, b"no backend is active\n")
            return
        self.inflight[target] += 1
        try:
            await self._forward(scope, receive, send, target)
        finally:
            await self._release(target)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, target: str) -> None:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in HOP_BY_HOP
        ]
        client_addr = scope.get("client") or ("", 0)
        headers.append(("x-forwarded-for", str(client_addr[0])))
        headers.append(("x-forwarded-proto", scope.get("scheme", "http")))
        host = next((v for k, v in scope["headers"] if k == b"host"), None)
        if host:
            headers.append(("x-forwarded-host", host.decode("latin-1")))
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        url = path.decode("latin-1") + (("?" + query.decode("latin-1")) if query else "")
        request = self._client(target).build_request(
            scope["method"], url, headers=headers, content=_body(receive)
        )
        try:
            response = await self._client(target).send(request, stream=True)
        except httpx.TransportError as exc:
            log.warning("proxy: backend %s failed: %s", target, exc.__class__.__name__)
            await _plain(send, 502, b"backend unavailable\n")
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers.multi_items()
                        if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def _status(self, scope: Scope, send: Send) -> None:
        client_addr = scope.get("client") or ("", 0)
        if str(client_addr[0]) not in _LOOPBACK:
            await _plain(send, 404, b"not found\n")
            return
        self.refresh(force=True)
        await self._close_drained()
        body = json.dumps(
            {
                "active_url": self.active,
                "generation": self.generation,
                "inflight": dict(self.inflight),
                "pid": os.getpid(),
            }
        ).encode()
        await _plain(send, 200, body, content_type=b"application/json")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.refresh(force=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.gather(*(c.aclose() for c in self._clients.values()))
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _plain(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def create_proxy_from_env() -> SwitchingProxy:
    """uvicorn ``--factory`` entry point; the state file comes from ``FASTINSIGHT_PROXY_STATE``."""
    state = os.environ.get("FASTINSIGHT_PROXY_STATE", "var/run/deploy.json")
    return SwitchingProxy(Path(state))
