"""The impression queue: batched writes to the real database, bounded memory, retries,
everything written on stop."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from pymongo.database import Database
from pymongo.errors import AutoReconnect

from fastinsight.services.experiments.impressions import ImpressionBuffer
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.common import InsertOutcome
from fastinsight.storage.mongo.impressions import ImpressionRepository


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
    assert db["impressions"].count_documents({}) == 1050
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
    assert len(buffer) == 300  # the failed batch went back to the front, in order
    assert buffer._queue[0]["_id"] == "r0"
    down = False
    assert buffer.flush() == 300
    buffer.flush()  # nothing left; re-sending a written batch would be harmless (same ids)
    assert repo.insert_many([_doc(0)]).duplicate_positions == [0]
    assert db["impressions"].count_documents({}) == 300
