"""A stand-in API for deploy tests: ``/health/ready`` after a delay, ``/whoami`` names the process.

``FAKE_READY_AFTER`` (seconds, default 0.3) delays readiness; ``FAKE_NEVER_READY=1`` keeps
it at 503 forever, which is what a broken release looks like to the deploy script.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]

STARTED = time.monotonic()
READY_AFTER = float(os.environ.get("FAKE_READY_AFTER", "0.3"))
NEVER_READY = os.environ.get("FAKE_NEVER_READY") == "1"


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/health/ready":
        ready = not NEVER_READY and time.monotonic() - STARTED >= READY_AFTER
        status, payload = (200, {"status": "ok"}) if ready else (503, {"status": "starting"})
    elif scope["path"] == "/slow":
        await asyncio.sleep(0.3)
        status, payload = 200, {"pid": os.getpid()}
    else:
        status, payload = 200, {"pid": os.getpid(), "echo": len(body)}
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})
