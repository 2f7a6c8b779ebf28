"""A scripted HTTP proxy in front of the real API, for the clients' retry tests.

Each request takes the next action of the script, then every later one is forwarded:
``"503:1"`` answers 503 with ``Retry-After: 1`` (any status and delay), ``"422"`` an error
without ``Retry-After``, ``"drop"`` closes the connection without an answer and without
forwarding, ``"forward-drop"`` forwards the request to the server and then closes the
connection without passing the answer on (an answer lost on the way back).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

PASSED_HEADERS = ("content-type", "retry-after", "x-request-id")
CODES = {429: "too_many_requests", 503: "unavailable", 422: "validation_failed", 400: "bad_request"}


@dataclass
class Seen:
    method: str
    path: str
    body: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class Proxy:
    url: str
    script: list[str]
    seen: list[Seen] = field(default_factory=list)


def _handler(upstream: str, proxy: Proxy, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                proxy.seen.append(Seen(self.command, self.path, body, time.monotonic()))
                action = proxy.script.pop(0) if proxy.script else "forward"
            if action == "drop":
                self._hang_up()
            elif action in {"forward", "forward-drop"}:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
                answer = httpx.request(self.command, upstream + self.path, content=body, headers=headers,
                                       timeout=30)
                if action == "forward-drop":
                    self._hang_up()
                else:
                    self._answer(answer.status_code, answer.content,
                                 {k: v for k, v in answer.headers.items() if k.lower() in PASSED_HEADERS})
            else:
                status, _, delay = action.partition(":")
                code = int(status)
                error = {"error": CODES.get(code, "error"), "message": f"scripted {code}",
                         "details": [{"field": "scripted", "message": "by the test proxy"}], "request_id": None}
                headers = {"content-type": "application/json"}
                if delay:
                    headers["retry-after"] = delay
                self._answer(code, json.dumps(error).encode(), headers)

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _hang_up(self) -> None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        do_GET = do_POST = do_PATCH = do_DELETE = _any

    return Handler


@contextmanager
def scripted_proxy(upstream: str, script: list[str]) -> Iterator[Proxy]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    proxy = Proxy(f"http://127.0.0.1:{server.server_address[1]}", list(script))
    server.RequestHandlerClass = _handler(upstream, proxy, threading.Lock())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
