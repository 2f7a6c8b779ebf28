"""The real-time state holds a bounded number of users and streams its start-up load.

Users past ``realtime_max_users`` are evicted (least recently used first); their events
stay in ``fresh_interactions`` and are read back on their next request, so answers are
the same as with an unbounded state.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.serving import realtime as realtime_module
from fastinsight.services.serving.realtime import RealtimeState, SpillFilter
from fastinsight.services.training.pipeline import train
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.users import UserRepository
from tests.api.test_recommend import _ids, seed
from tests.conftest import API_KEY, services_of


def _event(n: int, user: str, ingested: datetime, item: str | None = None) -> dict[str, object]:
    return {"_id": f"e{n}", "user_id": user, "item_id": item or f"i{n}", "type": "view", "value": None,
            "timestamp": ingested, "ingested_at": ingested}


class _CountingRepo(InteractionRepository):
    def __init__(self, db: Database[dict[str, object]]) -> None:
        super().__init__(db)
        self.read_back: list[str] = []

    def fresh_of_user(self, user_id: str) -> list[dict[str, Any]]:
        self.read_back.append(user_id)
        return super().fresh_of_user(user_id)


def _store(db: Database[dict[str, object]], state: RealtimeState, docs: list[dict[str, object]]) -> None:
    """What ingest does: store in the real-time buffer, then apply to this process."""
    db["fresh_interactions"].insert_many([dict(d) for d in docs])
    state.record(docs)


def test_users_past_the_bound_are_evicted_and_read_back(db: Database[dict[str, object]]) -> None:
    repo = _CountingRepo(db)
    state = RealtimeState(repo, UserRepository(db), max_users=3)
    now = datetime.now(UTC)
    users = ["u0", "u0", "u1", "u2", "u3", "u4"]
    _store(db, state, [_event(n, user, now + timedelta(milliseconds=n)) for n, user in enumerate(users)])
    assert list(state._events) == ["u2", "u3", "u4"]  # the most recent
    assert all(state.in_memory(u) for u in ("u2", "u3", "u4"))
    assert [r[0] for r in state.events("u4")] == ["i5"]
    assert not state.in_memory("u0") and not state.in_memory("u1")
    assert [r[0] for r in state.events("u0")] == ["i0", "i1"]  # read back, oldest first
    assert repo.read_back == ["u0"]
    assert state.in_memory("u0") and len(state._events) == 3
    state.events("u0")
    assert repo.read_back == ["u0"]  # in memory again: no second read
    assert state.events("never-seen") == [] and repo.read_back == ["u0"]


def test_an_evicted_user_s_new_event_does_not_hide_the_older_ones(db: Database[dict[str, object]]) -> None:
    repo = _CountingRepo(db)
    state = RealtimeState(repo, UserRepository(db), max_users=1)
    now = datetime.now(UTC)
    _store(db, state, [_event(1, "old", now), _event(2, "other", now + timedelta(seconds=1))])
    assert "old" not in state._events
    db["fresh_interactions"].insert_one(_event(3, "old", now + timedelta(seconds=2)))
    assert state.poll() >= 1  # another process's event for the evicted user
    assert not state.in_memory("old")
    assert [r[0] for r in state.events("old")] == ["i1", "i3"]


def test_a_version_covering_everything_evicted_resets_the_filter(db: Database[dict[str, object]]) -> None:
    repo = _CountingRepo(db)
    state = RealtimeState(repo, UserRepository(db), max_users=1)
    now = datetime.now(UTC)
    _store(db, state, [_event(1, "a", now), _event(2, "b", now + timedelta(seconds=1))])
    assert not state.in_memory("a")
    state.set_cutoff(now + timedelta(milliseconds=500))  # covers a's event, not b's
    assert state.in_memory("a") and state.events("a") == [] and repo.read_back == []
    assert [r[0] for r in state.events("b")] == ["i2"]


def test_an_evicted_user_erased_meanwhile_gets_nothing_back_from_before(
    db: Database[dict[str, object]]
) -> None:
    state = RealtimeState(_CountingRepo(db), UserRepository(db), max_users=1)
    now = datetime.now(UTC)
    _store(db, state, [_event(1, "gone", now - timedelta(seconds=5)), _event(2, "other", now)])
    assert not state.in_memory("gone")
    # Erased by this process; its rows are still being deleted when the read runs.
    state.user_erased("gone", now - timedelta(seconds=1))
    assert state.events("gone") == []
    _store(db, state, [_event(3, "gone", now + timedelta(seconds=1))])  # the id created again
    assert [r[0] for r in state.events("gone")] == ["i3"]


def test_start_up_streams_the_buffer_in_batches(
    db: Database[dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(realtime_module, "LOAD_BATCH", 4)
    now = datetime.now(UTC)
    db["fresh_interactions"].insert_many([_event(n, f"u{n % 3}", now) for n in range(11)])
    repo = InteractionRepository(db)
    state = RealtimeState(repo, UserRepository(db))
    applied_before_each_batch: list[int] = []
    real = repo.fresh_since

    def spy(since: datetime | None, batch_size: int = 5_000) -> Iterator[list[dict[str, Any]]]:
        for batch in real(since, batch_size):
            assert len(batch) <= 4
            applied_before_each_batch.append(len(state._ids))
            yield batch

    monkeypatch.setattr(repo, "fresh_since", spy)
    assert state.poll() == 11
    assert applied_before_each_batch == [0, 4, 8]  # each batch applied before the next is read
    assert sorted(len(state.events(f"u{u}")) for u in range(3)) == [3, 4, 4]


def test_spill_filter_never_forgets_a_user() -> None:
    spilled = SpillFilter()
    assert "x" not in spilled
    users = [f"user-{n}" for n in range(20_000)]
    for user in users:
        spilled.add(user)
    assert all(user in spilled for user in users)
    strangers = sum(f"stranger-{n}" in spilled for n in range(20_000))
    assert strangers < 20  # false positives: about 1e-7 at this fill
    spilled.clear()
    assert users[0] not in spilled


@pytest.fixture()
def bounded(db: Database[dict[str, object]], settings: Settings) -> Iterator[TestClient]:
    seed(db, settings)
    train(db, settings, "itemknn", evaluate=False)
    small = settings.model_copy(update={"realtime_max_users": 2})
    with TestClient(create_app(small), headers={"X-API-Key": API_KEY}) as client:
        yield client


def test_evicted_users_are_served_as_if_every_user_were_held(bounded: TestClient) -> None:
    assert bounded.post("/v1/items", json={"item_id": "a-new", "title": "Alpha new",
                                           "categories": ["alpha"]}).status_code == 201
    bought = {"a1": ["b0", "b1", "b2", "b3"], "a2": ["a-new"], "a3": ["a5"], "a4": ["b4"]}
    for user, items in bought.items():
        for item in items:
            r = bounded.post("/v1/interactions", json={"user_id": user, "item_id": item, "type": "purchase"})
            assert r.status_code == 201
    state = services_of(bounded).realtime
    assert len(state._events) == 2 and not state.in_memory("a1")
    for user, items in bought.items():
        got = _ids(bounded.get(f"/v1/users/{user}/recommendations", params={"k": 12}))
        assert not set(items) & set(got), (user, got)
    # a1's purchases still change a1's answer (live scoring from the read-back events).
    assert _ids(bounded.get("/v1/users/a1/recommendations", params={"k": 5}))[0] in {"b4", "b5"}
