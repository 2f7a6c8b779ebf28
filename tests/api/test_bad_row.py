"""One bad row among 2,000: it is rejected with its row number, the other 1,999 are stored
(the batch endpoint, the three import formats and the CLI import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.config import Settings

ROWS = 2000
BAD = 1234  # 1-based row number of the bad row


def _rows(bad_stamp: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"user_id": f"u{n % 97}", "item_id": f"i{n % 20}", "type": "view",
         "timestamp": 1_767_225_600 + n}
        for n in range(ROWS)
    ]
    rows[BAD - 1]["timestamp"] = bad_stamp
    return rows


def _csv(rows: list[dict[str, Any]]) -> str:
    lines = ["user_id,item_id,type,timestamp"]
    lines += [f"{r['user_id']},{r['item_id']},{r['type']},{r['timestamp']}" for r in rows]
    return "\n".join(lines) + "\n"


@pytest.fixture()
def items(client: TestClient) -> TestClient:
    body = json.dumps([{"item_id": f"i{k}"} for k in range(20)])
    assert client.post("/v1/items/import", content=body,
                       headers={"Content-Type": "application/json"}).json()["inserted"] == 20
    return client


def _check(report: dict[str, Any], db: Database[dict[str, object]]) -> None:
    assert report["inserted"] == ROWS - 1
    assert [r["row"] for r in report["rejected"]] == [BAD]
    assert report["rejected"][0]["errors"][0]["field"] == "timestamp"
    assert db["interactions"].count_documents({}) == ROWS - 1


def test_batch_endpoint(items: TestClient, db: Database[dict[str, object]]) -> None:
    body = json.dumps({"interactions": _rows(0)}).replace(
        '"timestamp": 0}', '"timestamp": 1e20}', 1)
    r = items.post("/v1/interactions/batch", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    _check(r.json(), db)


@pytest.mark.parametrize("media", ["application/json", "application/x-ndjson", "text/csv"])
def test_import_routes(items: TestClient, db: Database[dict[str, object]], media: str) -> None:
    rows = _rows("99999999999999999999")
    if media == "application/json":
        body = json.dumps(rows)
    elif media == "text/csv":
        body = _csv(rows)
    else:
        body = "\n".join(json.dumps(r) for r in rows)
    r = items.post("/v1/interactions/import", content=body, headers={"Content-Type": media})
    assert r.status_code == 200, r.text
    _check(r.json(), db)


def test_cli_import(items: TestClient, db: Database[dict[str, object]], settings: Settings,
                    tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rows = _rows(float("inf"))
    path.write_text("\n".join(json.dumps(r) for r in rows))  # Infinity, as Python writes it
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FASTINSIGHT_")},
           "FASTINSIGHT_MONGODB_URI": settings.mongodb_uri, "FASTINSIGHT_MONGODB_DB": settings.mongodb_db,
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(
        [sys.executable, "-c", "from fastinsight.cli import main; main()", "import", "interactions",
         str(path), "--json"], env=env, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr.decode()[-2000:]  # 1: some row was rejected
    _check(json.loads(proc.stdout.decode().strip().splitlines()[-1]), db)
