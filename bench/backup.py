"""Backup and restore throughput (documents/s) on N interactions, ours vs a naive baseline.

Ours: ``dump_database`` (raw BSON straight from the cursor, sha256 while writing, gzip
tar, then a full read-back verification) and ``restore_archive`` (verification pass,
raw BSON ``insert_many`` in batches, index rebuild, count check).
Baseline: decode every document to a dict and ``bson.encode`` it again into a plain
``.bson`` file (no compression, no checksums, no verification), and restore by
``decode_file_iter`` + ``insert_many`` of dicts (no verification, no indexes), on the
first ``--baseline-n`` documents to keep the run short (rates are per document).
mongodump is not installed here, so it is not part of the comparison.

Usage: ``python bench/backup.py [--n 1000000]`` with the local database running.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bson
from pymongo import MongoClient

sys.path.insert(0, "src")
from _common import mongo_uri, table, write_result
from fastinsight.ops.archive import verify_archive
from fastinsight.ops.dump import dump_database
from fastinsight.ops.restore import restore_archive
from fastinsight.storage.mongo import apply_indexes
from fastinsight.storage.mongo.interactions import interaction_document

TYPES = ("view", "click", "like", "add_to_cart", "purchase")


def interactions(n: int, users: int, items: int) -> Any:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        u, it = (i * 7919) % users, (i * 104_729 + i // users) % items
        ts = start + timedelta(seconds=i * 13)
        kind = TYPES[i % len(TYPES)]
        yield interaction_document(f"user-{u:06d}", f"item-{it:05d}", kind,
                                   float(i % 5) if kind == "like" else None, ts, None)


def row(path: str, step: str, docs: int, seconds: float, cpu: float | None = None,
        **extra: Any) -> dict[str, Any]:
    """One result; ``cpu`` is this process's CPU time (the client-side cost)."""
    return {"path": path, "step": step, "documents": docs, "seconds": round(seconds, 2),
            "docs_per_s": round(docs / seconds),
            "client_cpu_s": None if cpu is None else round(cpu, 2), **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="interactions")
    parser.add_argument("--baseline-n", type=int, default=200_000,
                        help="documents the (slower-to-run-twice) baseline handles")
    parser.add_argument("--batch", type=int, default=1000, help="restore insert_many batch")
    args = parser.parse_args()
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri(), tz_aware=True)
    tag = uuid.uuid4().hex[:8]
    source, ours_db, base_db = (f"bench_bk_{tag}", f"bench_bk_ours_{tag}",
                                f"bench_bk_base_{tag}")
    rows: list[dict[str, Any]] = []
    try:
        db = client[source]
        apply_indexes(db)
        started = time.perf_counter()
        batch: list[dict[str, Any]] = []
        for doc in interactions(args.n, users=50_000, items=5_000):
            batch.append(doc)
            if len(batch) == 10_000:
                db.interactions.insert_many(batch, ordered=False)
                batch = []
        if batch:
            db.interactions.insert_many(batch, ordered=False)
        seed = time.perf_counter() - started
        print(f"seeded {args.n} interactions in {seed:.1f}s", file=sys.stderr)

        with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
            out = Path(tmp)
            cpu = time.process_time()
            dump = dump_database(db, out / "ours")
            size = dump.archive_bytes
            rows.append(row("ours", "dump+pack+verify", args.n, dump.seconds,
                            time.process_time() - cpu, bytes=size, compressed=True))
            started, cpu = time.perf_counter(), time.process_time()
            verify_archive(dump.archive)
            rows.append(row("ours", "verify only", args.n, time.perf_counter() - started,
                            time.process_time() - cpu))

            base_n = min(args.baseline_n, args.n)
            plain = out / "baseline.bson"
            started, cpu = time.perf_counter(), time.process_time()
            with plain.open("wb") as fh:
                for doc in db.interactions.find({}, batch_size=2000).limit(base_n):
                    fh.write(bson.encode(doc))
            rows.append(row("baseline", "decode+encode dump", base_n,
                            time.perf_counter() - started, time.process_time() - cpu,
                            bytes=plain.stat().st_size, compressed=False))

            cpu = time.process_time()
            result = restore_archive(client, dump.archive, target_db=ours_db,
                                     batch_size=args.batch)
            restore_cpu = time.process_time() - cpu
            restored = result.inserted["interactions"]
            assert restored == args.n, restored
            rows.append(row("ours", "verify+restore+indexes", args.n, result.seconds,
                            restore_cpu,
                            phases={k: round(v, 2) for k, v in result.phases.items()}))
            rows.append(row("ours", "restore: inserts only", args.n, result.phases["insert"]))

            started, cpu = time.perf_counter(), time.process_time()
            target = client[base_db].interactions
            with plain.open("rb") as fh:
                batch = []
                for doc in bson.decode_file_iter(fh):
                    batch.append(doc)
                    if len(batch) == args.batch:
                        target.insert_many(batch, ordered=True)
                        batch = []
                if batch:
                    target.insert_many(batch, ordered=True)
            rows.append(row("baseline", "decode+insert_many", base_n,
                            time.perf_counter() - started, time.process_time() - cpu))
    finally:
        for name in (source, ours_db, base_db):
            client.drop_database(name)
        client.close()

    print(table(rows, ["path", "step", "documents", "seconds", "docs_per_s", "client_cpu_s",
                       "bytes"]))
    path = write_result("backup", {
        "interactions": args.n, "baseline_documents": min(args.baseline_n, args.n),
        "seed_seconds": round(seed, 2),
        "seed_docs_per_s": round(args.n / seed), "restore_batch": args.batch,
        "server": "FerretDB 1.24 (SQLite handler), shared 2-core VM", "results": rows,
    })
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
