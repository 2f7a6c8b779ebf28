"""Shared handling of import uploads: spool the body to disk, pick the parser."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Query, Request
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


FirstRow = Annotated[int, Query(
    ge=1, le=10**12,
    description="Number of this body's first data row, for a file sent in several requests: "
                "rejected rows are reported, and interactions without timestamp or event_id "
                "are keyed, by their row number in the whole file (so re-sending the file "
                "in the same batches stores nothing twice)")]


async def run_import(
    request: Request,
    kind: str,
    importer: Callable[[Iterable[ParsedRow]], ImportReport],
    max_bytes: int,
    first_row: int = 1,
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
            rows = read_rows(spool, fmt, kind)
            if first_row != 1:
                rows = ((number + first_row - 1, row) for number, row in rows)
            return importer(rows)

        return await run_in_threadpool(work)
