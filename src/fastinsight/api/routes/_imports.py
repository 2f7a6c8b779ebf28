"""Shared handling of import uploads: spool the body to disk, pick the parser."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from fastinsight.errors import PayloadTooLarge
from fastinsight.schemas.core import ImportReport
from fastinsight.services.data.parsing import ParsedRow, format_from_content_type, read_rows

IMPORT_DOC = {
    "required": True,
    "description": "A JSON array, JSON Lines or CSV body, chosen by Content-Type "
    "(application/json, application/x-ndjson, text/csv).",
    "content": {
        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
        "application/x-ndjson": {"schema": {"type": "string", "minLength": 1}},
        "text/csv": {"schema": {"type": "string", "minLength": 1, "description":
                                "A header line naming at least the required columns, then rows"}},
    },
}


async def run_import(
    request: Request,
    kind: str,
    importer: Callable[[Iterable[ParsedRow]], ImportReport],
    max_bytes: int,
) -> ImportReport:
    fmt = format_from_content_type(request.headers.get("content-type"))
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"request body is larger than the limit of {max_bytes} bytes")
            spool.write(chunk)
        spool.seek(0)

        def work() -> ImportReport:
            return importer(read_rows(spool, fmt, kind))

        return await run_in_threadpool(work)
