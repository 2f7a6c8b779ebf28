"""RealtimeState on the real database: de-duplication, the training cut-off, erasures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from pymongo.database import Database

from fastinsight.services.serving.realtime import MAX_EVENTS_PER_USER, RealtimeState
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.users import UserRepository, erasure_key


def _event(n: int, user: str, ingested: datetime) -> dict[str, object]:
    return {"_id": f"e{n}", "user_id": user, "item_id": f"i{n}", "type": "view", "value": None,
            "timestamp": ingested, "ingested_at": ingested}


def _state(db: Database[dict[str, object]]) -> RealtimeState:
    return RealtimeState(InteractionRepository(db), UserRepository(db))


def test_poll_reads_other_writers_once_and_cutoff_drops_covered_events(
    db: Database[dict[str, object]]
) -> None:
    now = datetime.now(UTC)
    old, new = now - timedelta(minutes=5), now
    db["fresh_interactions"].insert_many([_event(1, "u1", old), _event(2, "u1", new)])
    state = _state(db)
    assert state.poll() == 2
    assert state.poll() == 0  # the overlap re-reads, de-duplicated by _id
    assert [r[0] for r in state.events("u1")] == ["i1", "i2"]
    state.record([_event(2, "u1", new)])  # own write-through of an event already seen
    assert len(state.events("u1")) == 2
    state.set_cutoff(now - timedelta(minutes=1))  # a version trained up to a minute ago
    assert [r[0] for r in state.events("u1")] == ["i2"]
    state.record([_event(3, "u1", old)])  # older than the served version: ignored
    assert [r[0] for r in state.events("u1")] == ["i2"]
    assert state.is_known("u1") and not state.is_known("u2")


def test_events_per_user_are_capped_newest_kept(db: Database[dict[str, object]]) -> None:
    state = _state(db)
    now = datetime.now(UTC)
    state.record([_event(n, "heavy", now + timedelta(microseconds=n))
                  for n in range(MAX_EVENTS_PER_USER + 5)])
    items = [r[0] for r in state.events("heavy")]
    assert len(items) == MAX_EVENTS_PER_USER and items[-1] == f"i{MAX_EVENTS_PER_USER + 4}"
    assert items[0] == "i5"


def test_erasure_tombstone_forgets_the_user_everywhere(db: Database[dict[str, object]]) -> None:
    users = UserRepository(db)
    users.upsert("gone", {})
    state = _state(db)
    now = datetime.now(UTC)
    state.record([_event(1, "gone", now)])
    state.remember("gone")
    assert users.delete("gone")[0]
    tomb = db["user_erasures"].find_one({"_id": erasure_key("gone")})
    assert tomb is not None and "gone" not in str(tomb)  # a digest, not the id
    state.poll()
    assert state.erased_at("gone") is not None
    assert state.events("gone") == [] and not state.is_known("gone")


def _starts(step_seconds: float, duty: float, run_for: float) -> list[float]:
    import time

    from fastinsight.services.serving.background import Ticker

    starts: list[float] = []

    def step() -> None:
        starts.append(time.monotonic())
        time.sleep(step_seconds)

    ticker = Ticker("test", lambda: 0.01, step, duty=duty)
    ticker.start()
    time.sleep(run_for)
    ticker.stop()
    return starts


def test_poller_keeps_its_interval_while_polls_are_cheap_and_backs_off_when_slow() -> None:
    cheap = _starts(0.0, duty=0.25, run_for=0.4)
    assert len(cheap) >= 10  # every ~10 ms
    slow = _starts(0.05, duty=0.25, run_for=0.8)
    gaps = [b - a for a, b in pairwise(slow)]
    # A 50 ms step at a 25% duty cap waits 150 ms more, not the 10 ms interval.
    assert gaps and min(gaps) >= 0.05 + 0.15 * 0.9
    unlimited = _starts(0.05, duty=1.0, run_for=0.8)
    assert len(unlimited) >= 2 * len(slow)
