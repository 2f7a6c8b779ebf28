"""Schemathesis hooks of the fuzz runs (``SCHEMATHESIS_HOOKS=tests.fuzz_hooks``)."""

from __future__ import annotations

from typing import Any

import schemathesis

# A restore job, above all with ``drop``, would replace the database under the run. It is
# still sent, as a dry run into a scratch database name; tests/ops covers real restores.
SCRATCH_DB = "fi_fuzz_restore_scratch"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    body = case.body
    if isinstance(body, dict) and body.get("name") == "restore" and isinstance(body.get("args"), dict):
        case.body = {**body, "args": {**body["args"], "dry_run": True, "target_db": SCRATCH_DB}}
