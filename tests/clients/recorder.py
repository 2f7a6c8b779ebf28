"""Which operations of the OpenAPI document a client actually called (an httpx hook)."""

from __future__ import annotations

import re
from typing import Any

import httpx

# Only a browser sends beacons (sendBeacon cannot set headers); the JS tests cover it.
BROWSER_ONLY = {("POST", "/v1/beacon")}


class Recorder:
    def __init__(self, openapi: dict[str, Any]) -> None:
        self.operations = {(m.upper(), p) for p, ops in openapi["paths"].items() for m in ops}
        # Fixed paths before templates: /v1/items/trending is not /v1/items/{item_id}.
        paths = sorted(openapi["paths"], key=lambda p: ("{" in p, p))
        self._patterns = [(p, re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", p) + "$")) for p in paths]
        self.called: set[tuple[str, str]] = set()

    def hook(self, request: httpx.Request) -> None:
        path = request.url.path
        template = next((p for p, rx in self._patterns if rx.match(path)), path)
        self.called.add((request.method, template))

    async def async_hook(self, request: httpx.Request) -> None:
        self.hook(request)

    def missing(self) -> set[tuple[str, str]]:
        return self.operations - BROWSER_ONLY - self.called
