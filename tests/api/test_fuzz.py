"""A bounded, seeded Schemathesis run (all checks, API key and admin key) against a real
server over a fresh seeded database: no 5xx, no answer the OpenAPI document does not
describe. ``make fuzz`` runs the same thing with tens of thousands of cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz import fuzz

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 3  # per operation and phase: about 3,500 cases per tenant key, 600 operator
MIN_CASES = {"api-key": 2000, "admin-key": 2000, "operator-key": 300}
SEED = 17


def test_schema_fuzz_finds_no_server_error_and_no_undocumented_answer(tmp_path: Path) -> None:
    runs = fuzz(MAX_EXAMPLES, SEED, tmp_path, timeout=900)
    for run in runs:
        assert run.cases >= MIN_CASES[run.key], run
        assert not run.errors, f"{run.key}: {run.errors}; see {tmp_path}/schemathesis-{run.key}.log"
        assert run.contract_failures == {}, (
            f"{run.key}: {run.failing_operations}; see {tmp_path}/schemathesis-{run.key}.log")
