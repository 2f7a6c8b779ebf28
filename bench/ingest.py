"""Validated import vs raw PyMongo insert_many, same documents, same server, one run.

Our path: JSON Lines bytes -> parse -> Pydantic validation -> type/item checks ->
documents with deterministic ids -> unordered bulk inserts (+ user stubs). Baseline:
``insert_many(ordered=False)`` of the finished documents in the same batch size.
Usage: ``python bench/ingest.py [--rows 200000]`` with the local database running.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import uuid

from pymongo import MongoClient

sys.path.insert(0, "src")
from _common import mongo_uri, table, write_result
from fastinsight.config import Settings
from fastinsight.schemas.core import InteractionIn
from fastinsight.services.data.demo import DemoSize, synthetic_interactions, synthetic_items
from fastinsight.services.data.ingest import IngestService
from fastinsight.services.data.parsing import Format, read_rows
from fastinsight.storage.mongo import apply_indexes
from fastinsight.storage.mongo.interactions import interaction_document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    size = DemoSize(users=20_000, items=2_000, interactions=args.rows, seed=11)
    rows = list(synthetic_interactions(size))
    payload = "\n".join(json.dumps(r) for r in rows).encode()
    docs = []
    for r in rows:
        m = InteractionIn.model_validate(r)
        assert m.timestamp is not None
        docs.append(interaction_document(m.user_id, m.item_id, m.type, m.value, m.timestamp, m.event_id))

    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri(), tz_aware=True)
    results = []
    try:
        # Baseline: the raw driver inserting the finished documents.
        raw_db = client[f"bench_raw_{uuid.uuid4().hex[:8]}"]
        apply_indexes(raw_db)
        started = time.perf_counter()
        for i in range(0, len(docs), args.batch):
            raw_db["interactions"].insert_many(docs[i : i + args.batch], ordered=False)
        raw = time.perf_counter() - started
        results.append({"path": "raw insert_many", "rows": len(docs), "seconds": raw,
                        "rows_per_s": len(docs) / raw})
        client.drop_database(raw_db.name)

        ours_db = client[f"bench_ours_{uuid.uuid4().hex[:8]}"]
        apply_indexes(ours_db)
        settings = Settings(mongodb_uri=mongo_uri(), mongodb_db=ours_db.name, import_batch_size=args.batch,
                            _env_file=None)  # type: ignore[call-arg]
        svc = IngestService(ours_db, settings)
        svc.import_items(enumerate(synthetic_items(size), start=1))
        started = time.perf_counter()
        report = svc.import_interactions(read_rows(io.BytesIO(payload), Format.JSONL, "interactions"))
        ours = time.perf_counter() - started
        assert not report.rejected and report.inserted + report.duplicates == len(rows)
        results.append({"path": "validated import (JSONL)", "rows": len(rows), "seconds": ours,
                        "rows_per_s": len(rows) / ours, "users_created": report.users_created})
        started = time.perf_counter()
        again = svc.import_interactions(read_rows(io.BytesIO(payload), Format.JSONL, "interactions"))
        retry = time.perf_counter() - started
        assert again.inserted == 0
        results.append({"path": "re-import (all duplicates)", "rows": len(rows), "seconds": retry,
                        "rows_per_s": len(rows) / retry})
        client.drop_database(ours_db.name)
    finally:
        client.close()
    ratio = results[1]["rows_per_s"] / results[0]["rows_per_s"]
    out = {"benchmark": "ingest", "rows": args.rows, "batch": args.batch, "results": results,
           "ours_vs_raw": round(ratio, 3), "target": 0.70, "server": "FerretDB 1.24 (SQLite)"}
    print(json.dumps(out, indent=2, default=str))
    print(table(results, ["path", "rows", "seconds", "rows_per_s"]))
    print(f"validated import = {ratio:.0%} of raw insert_many throughput (target >= 70%)")
    write_result("ingest", out)


if __name__ == "__main__":
    main()
