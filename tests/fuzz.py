"""Schema fuzzing with Schemathesis against a real server over a fresh, seeded database.

Used by ``tests/api/test_fuzz.py`` (a bounded, seeded run in ``make test``) and by
``make fuzz`` (``python -m tests.fuzz``: tens of thousands of cases before a release).
Each run starts uvicorn on a free loopback port over a new database holding a small
synthetic catalogue, one trained model, the insight rollups and segments, then runs
every Schemathesis check once with the API key, once with the admin key and once with
the operator key (which creates, changes and deletes tenants).

Nothing is excluded, but a restore job (which, above all with ``drop``, would replace
the database under the run) is sent as a dry run into a scratch database name
(``tests/fuzz_hooks.py``); ``tests/ops`` covers real restores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from fastinsight.services.data.demo import DemoSize, load_synthetic
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.insights.analytics import InsightsService
from fastinsight.services.insights.segments import SegmentService
from fastinsight.services.training.pipeline import train
from tests.conftest import ADMIN_KEY, API_KEY, OPERATOR_KEY, ROOT
from tests.live import (
    drop_database,
    drop_tenants,
    free_port,
    live_process,
    live_settings,
    server_env,
    uvicorn_argv,
)

# Failures that break the contract: a 5xx, an answer the document does not describe.
CONTRACT_FAILURES = (
    "ServerError", "ContentTypeServerError", "UndefinedStatusCode", "MissingContentType",
    "UndefinedContentType", "MalformedMediaType", "JsonSchemaError", "MalformedJson",
    "MissingHeaders", "ContentDeserializationError",
)


@dataclass
class KeyRun:
    key: str
    cases: int
    seconds: float
    exit_code: int
    failures: dict[str, int] = field(default_factory=dict)
    failing_operations: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def contract_failures(self) -> dict[str, int]:
        return {k: v for k, v in self.failures.items() if k in CONTRACT_FAILURES}


def seed(db_name: str, tmp: Path) -> None:
    settings = live_settings(db_name, tmp)
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        db = client[db_name]
        load_synthetic(IngestService(db, settings),
                       DemoSize(users=150, items=80, interactions=4000, days=60))
        train(db, settings, "als", reason="fuzz")
        insights = InsightsService(db)
        insights.refresh(wait=True)
        SegmentService(db, insights).rebuild(4, wait=True)
    finally:
        client.close()


@contextmanager
def fuzz_server(tmp: Path) -> Iterator[str]:
    """A seeded server; the database is dropped afterwards."""
    db_name = f"fi_fuzz_{uuid.uuid4().hex[:10]}"
    port = free_port()
    try:
        seed(db_name, tmp)
        env = server_env(db_name, tmp, operator=True, FASTINSIGHT_SCRIPTS_DIR=str(ROOT / "scripts"))
        with live_process(uvicorn_argv(port), env, tmp, port) as live:
            yield live.url
    finally:
        drop_database(db_name)
        drop_tenants(db_name)  # the operator run creates tenants, each with a database


# Each key is fuzzed where it reaches a handler: the operator key only on the operator
# routes, the tenant keys everywhere else. The other pairings answer 403 before any
# input is read (tests/api/test_scope_sweep.py checks every one of them).
OPERATOR_PATHS = "^/v1/operator/"
KEY_FILTERS = {"api-key": ["--exclude-path-regex", OPERATOR_PATHS],
               "admin-key": ["--exclude-path-regex", OPERATOR_PATHS],
               "operator-key": ["--include-path-regex", OPERATOR_PATHS]}


def run_schemathesis(url: str, key: str, label: str, max_examples: int, seed_value: int,
                     out_dir: Path, timeout: float) -> KeyRun:
    out_dir = out_dir.resolve()
    report = out_dir / f"schemathesis-{label}.json"
    argv = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
            "--checks", "all", "--max-examples", str(max_examples), "--seed", str(seed_value),
            "--workers", "1", "--no-color", "--generation-database", "none", "--suppress-health-check", "all",
            "--request-timeout", "60", "-H", f"X-API-Key: {key}", *KEY_FILTERS[label],
            "--report", "json", "--report-json-path", str(report)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.fuzz_hooks",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *(p for p in sys.path if p)])}
    started = time.monotonic()
    with (out_dir / f"schemathesis-{label}.log").open("wb") as log:
        # In out_dir: Schemathesis keeps a cache of past failures in its working directory.
        proc = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=out_dir,
                              timeout=timeout, check=False)
    seconds = time.monotonic() - started
    data = json.loads(report.read_text())
    return KeyRun(
        key=label, cases=int(data["test_cases"]["generated"]), seconds=round(seconds, 1),
        exit_code=proc.returncode,
        failures={f["type"]: int(f["count"]) for f in data.get("failures", [])},
        failing_operations={f["type"]: list(f.get("operations", []))
                            for f in data.get("failures", [])},
        errors=[f"{e['title']} ({e['count']})" for e in data.get("errors", [])],
    )


def fuzz(max_examples: int, seed_value: int, out_dir: Path, timeout: float = 3600) -> list[KeyRun]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fi-fuzz-") as tmp, fuzz_server(Path(tmp)) as url:
        return [run_schemathesis(url, key, label, max_examples, seed_value, out_dir, timeout)
                for label, key in (("api-key", API_KEY), ("admin-key", ADMIN_KEY),
                                   ("operator-key", OPERATOR_KEY))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=300,
                        help="cases per operation and phase (default 300)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "fuzz",
                        help="directory for the Schemathesis reports and logs")
    parser.add_argument("--summary", type=Path, help="also write the summary JSON here")
    args = parser.parse_args(argv)
    runs = fuzz(args.max_examples, args.seed, args.out, timeout=6 * 3600)
    summary = {
        "command": "python -m tests.fuzz " + " ".join(sys.argv[1:] if argv is None else argv),
        "max_examples": args.max_examples, "seed": args.seed,
        "runs": [{**asdict(r), "contract_failures": r.contract_failures} for r in runs],
    }
    text = json.dumps(summary, indent=2)
    sys.stdout.write(text + "\n")
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(text + "\n")
    for r in runs:
        sys.stdout.write(f"{r.key:10} cases={r.cases:6d} seconds={r.seconds:7.1f} "
                         f"failures={sum(r.failures.values())} contract={r.contract_failures}\n")
    return 1 if any(r.failures or r.errors for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
