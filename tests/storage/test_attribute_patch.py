"""Attribute patches are atomic per key: concurrent patches of distinct keys lose nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.errors import Unavailable, ValidationFailed
from fastinsight.storage.mongo.doclock import DOCUMENT_LOCKS, document_lock
from fastinsight.storage.mongo.users import UserRepository

Db = Database[dict[str, Any]]
THREADS = 8
KEYS_PER_THREAD = 25
USERS = 3


def _patch_concurrently(mongo_uri: str, db_name: str, patch: Any) -> int:
    """THREADS threads, each patching its own keys on every user; returns acknowledged patches."""
    barrier = threading.Barrier(THREADS)
    acknowledged = [0] * THREADS
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
        try:
            db = client[db_name]
            barrier.wait()
            for k in range(KEYS_PER_THREAD):
                for u in range(USERS):
                    if patch(db, f"u{u}", {f"t{n}_k{k}": k}) is not None:
                        acknowledged[n] += 1
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return sum(acknowledged)


def test_concurrent_user_patches_of_distinct_keys_lose_nothing(
    db: Db, mongo_uri: str
) -> None:
    users = UserRepository(db)
    for u in range(USERS):
        users.upsert(f"u{u}", {"plan": "free"})

    def patch(d: Db, uid: str, attrs: dict[str, Any]) -> Any:
        return UserRepository(d).patch_attributes(uid, attrs)

    acknowledged = _patch_concurrently(mongo_uri, db.name, patch)

    assert acknowledged == THREADS * KEYS_PER_THREAD * USERS  # 600 acknowledged patches
    for u in range(USERS):
        stored = users.get(f"u{u}")
        assert stored is not None
        expected = {"plan": "free"} | {
            f"t{n}_k{k}": k for n in range(THREADS) for k in range(KEYS_PER_THREAD)
        }
        lost = sorted(set(expected) - set(stored["attributes"]))
        assert not lost, f"u{u} lost {len(lost)} acknowledged keys: {lost[:10]}"
        assert stored["attributes"] == expected


def test_null_removes_a_key_and_other_keys_stay(db: Db) -> None:
    users = UserRepository(db)
    users.upsert("u1", {"plan": "pro", "country": "DE", "age": 30})
    stored = users.patch_attributes("u1", {"country": None, "age": 31, "new": {"a": 1}})
    assert stored is not None
    assert stored["attributes"] == {"plan": "pro", "age": 31, "new": {"a": 1}}
    assert users.patch_attributes("missing", {"a": 1}) is None
    assert db.users.find_one({"_id": "missing"}) is None  # a patch never creates a user


@pytest.mark.parametrize(
    "key", ["$set", "a.b", "attributes", "", "nul\x00byte", "..", "$where"]
)
def test_keys_that_would_become_operators_or_paths_are_refused(db: Db, key: str) -> None:
    users = UserRepository(db)
    users.upsert("u1", {"plan": "pro"})
    before = db.users.find_one({"_id": "u1"})
    if key == "attributes":  # a plain key: allowed, stays inside attributes
        stored = users.patch_attributes("u1", {key: 1})
        assert stored is not None and stored["attributes"] == {"plan": "pro", "attributes": 1}
        return
    with pytest.raises(ValidationFailed):
        users.patch_attributes("u1", {key: 1})
    assert db.users.find_one({"_id": "u1"}) == before


def test_document_lock_times_out_while_held_and_takes_over_an_expired_one(db: Db) -> None:
    clock = [1000.0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock[0] += seconds

    with document_lock(db, "users/u1", clock=lambda: clock[0]):
        waiting = document_lock(db, "users/u1", wait=0.5, clock=lambda: clock[0], sleep=sleep)
        with pytest.raises(Unavailable, match="retry"), waiting:
            pass
        assert naps and sum(naps) >= 0.5
    assert db[DOCUMENT_LOCKS].count_documents({}) == 0  # released

    # A holder that died: its lock expires after the lease and the next writer takes it.
    db[DOCUMENT_LOCKS].insert_one({"_id": "users/u2", "token": "dead", "expires": clock[0] - 1})
    with document_lock(db, "users/u2", clock=lambda: clock[0], sleep=sleep):
        held = db[DOCUMENT_LOCKS].find_one({"_id": "users/u2"})
        assert held is not None and held["token"] != "dead"
    assert db[DOCUMENT_LOCKS].count_documents({}) == 0
