"""The impression queue: batched writes to the real database, bounded memory, retries,
everything written on stop."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.database import Database
from pymongo.errors import AutoReconnect

from fastinsight.services.experiments.impressions import ImpressionBuffer
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import InsertOutcome
from fastinsight.storage.mongo.impressions import ImpressionRepository

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _doc(n: int) -> Document:
    return {"_id": f"r{n}", "user_id": f"u{n % 7}", "endpoint": "user", "items": ["a", "b"], "offset": 0,
            "model_version": "v1", "experiment_id": None, "variant": None, "ts": datetime.now(UTC)}


def test_batches_and_flush_on_stop(db: Database[Document]) -> None:
    repo = ImpressionRepository(db)
    sizes: list[int] = []

    def write(docs: Sequence[Document]) -> InsertOutcome:
        sizes.append(len(docs))
        return repo.insert_many(docs)

    buffer = ImpressionBuffer(write, max_queued=10_000, batch_size=100, flush_seconds=3600)
    buffer.start()
    for n in range(1050):
        assert buffer.record(_doc(n))
    buffer.stop()  # the flush interval never came: stop writes everything
    stored = list(repo.between(EPOCH, datetime.now(UTC)))
    assert [d["_id"] for d in stored] == [f"r{n}" for n in range(1050)]
    assert db["impressions"].count_documents({}) == 11  # one bucket per batch
    assert max(sizes) == 100 and sum(sizes) == 1050 and len(buffer) == 0


def test_bounded_and_retried_while_the_database_fails(db: Database[Document]) -> None:
    repo = ImpressionRepository(db)
    down = True

    def write(docs: Sequence[Document]) -> InsertOutcome:
        if down:
            raise AutoReconnect("database down")
        return repo.insert_many(docs)

    buffer = ImpressionBuffer(write, max_queued=300, batch_size=50, flush_seconds=3600)
    accepted = sum(buffer.record(_doc(n)) for n in range(400))
    assert accepted == 300 and buffer.dropped == 100 and len(buffer) == 300
    with pytest.raises(AutoReconnect):
        buffer.flush()
    assert len(buffer) == 300  # the failed batch is kept, to be retried first, unchanged
    assert [d["_id"] for d in buffer._failed] == [f"r{n}" for n in range(50)]
    down = False
    assert buffer.flush() == 300
    buffer.flush()  # nothing left; re-sending a written batch would be harmless (same bucket)
    assert repo.insert_many([_doc(n) for n in range(50)]).duplicate_positions == list(range(50))
    assert sorted(d["_id"] for d in repo.between(EPOCH, datetime.now(UTC))) == sorted(
        f"r{n}" for n in range(300))


def test_a_write_that_landed_but_failed_is_not_repeated(db: Database[Document]) -> None:
    """The database wrote the bucket but the answer was lost: the retry is the same bucket
    and changes nothing, even with more impressions queued meanwhile."""
    repo = ImpressionRepository(db)
    calls = 0

    def write(docs: Sequence[Document]) -> InsertOutcome:
        nonlocal calls
        calls += 1
        outcome = repo.insert_many(docs)
        if calls == 1:
            raise AutoReconnect("connection lost after the write")
        return outcome

    buffer = ImpressionBuffer(write, max_queued=1000, batch_size=40, flush_seconds=3600)
    for n in range(30):
        buffer.record(_doc(n))
    with pytest.raises(AutoReconnect):
        buffer.flush()
    for n in range(30, 60):
        buffer.record(_doc(n))
    buffer.flush()
    ids = [d["_id"] for d in repo.between(EPOCH, datetime.now(UTC))]
    assert sorted(ids) == sorted(f"r{n}" for n in range(60))


def test_buckets_of_two_writers_merge_in_time_order(db: Database[Document]) -> None:
    """Two processes' buckets overlap in time; reading gives one stream, oldest first,
    and only the asked-for range; one-per-document impressions are read too."""
    repo = ImpressionRepository(db)
    t0 = datetime(2026, 5, 1, tzinfo=UTC)

    def doc(rid: str, seconds: int) -> Document:
        return {**_doc(0), "_id": rid, "ts": t0 + timedelta(seconds=seconds)}

    repo.insert_many([doc("a1", 1), doc("a2", 4), doc("a3", 9)])
    repo.insert_many([doc("b1", 2), doc("b2", 3), doc("b3", 12)])
    db["impressions"].insert_one(doc("old", 5))
    got = [(d["_id"], d["ts"]) for d in repo.between(t0 + timedelta(seconds=2), t0 + timedelta(seconds=10))]
    assert [rid for rid, _ in got] == ["b1", "b2", "a2", "old", "a3"]
    assert got[0][1] == t0 + timedelta(seconds=2)


def test_erasing_a_user_rewrites_their_buckets(db: Database[Document]) -> None:
    repo = ImpressionRepository(db)
    repo.insert_many([_doc(n) for n in range(21)])  # users u0..u6, three rows each
    db["impressions"].insert_one({**_doc(99), "user_id": "u3"})
    assert repo.erase_user("u3") == 4
    left = list(repo.between(EPOCH, datetime.now(UTC)))
    assert len(left) == 18 and all(d["user_id"] != "u3" for d in left)
    assert repo.erase_user("u3") == 0


def test_a_steady_stream_is_written_in_full_batches(db: Database[Document]) -> None:
    """While answers keep coming, only full batches are written (one bucket each), not
    whatever arrived during the previous write; the rest waits for its flush interval."""
    repo = ImpressionRepository(db)
    sizes: list[int] = []

    def slow_write(docs: Sequence[Document]) -> InsertOutcome:
        sizes.append(len(docs))
        time.sleep(0.02)  # a database round trip under load
        return repo.insert_many(docs)

    buffer = ImpressionBuffer(slow_write, max_queued=10_000, batch_size=200, flush_seconds=30)
    buffer.start()
    for n in range(1100):
        assert buffer.record(_doc(n))
        if n % 5 == 0:
            time.sleep(0.001)  # a steady stream, slower than the writes: not one burst
    deadline = time.monotonic() + 30
    while len(sizes) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sizes == [200] * 5  # the 100 left are not due for 30 s
    buffer.stop()
    assert sizes == [200] * 5 + [100]
    assert db["impressions"].count_documents({}) == 6


def test_the_rest_is_written_once_its_oldest_impression_is_due(db: Database[Document]) -> None:
    repo = ImpressionRepository(db)
    buffer = ImpressionBuffer(repo.insert_many, max_queued=10_000, batch_size=1000, flush_seconds=0.2)
    buffer.start()
    try:
        for n in range(30):
            buffer.record(_doc(n))
        deadline = time.monotonic() + 10
        while buffer.written < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert buffer.written == 30 and len(buffer) == 0
    finally:
        buffer.stop()
