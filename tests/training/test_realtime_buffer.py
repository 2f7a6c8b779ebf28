"""The real-time buffer keeps every event a servable version still needs (issue 18, item 2).

A version serves the events posted after its snapshot from ``fresh_interactions``. The
buffer may only be trimmed up to the oldest snapshot among the versions that can still
be served (the active one and those kept for roll-back), or a replica that starts while
an older version is active, or a roll-back, forgets what a user just did.

Known-answer data (``tests.api.test_recommend.seed``): user ``a0`` has not seen ``a3``,
which every other ``a`` user liked, so ``a3`` is ``a0``'s first recommendation until
``a0`` buys it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from fastapi.testclient import TestClient
from pymongo.database import Database

from fastinsight.api.app import create_app
from fastinsight.config import Settings
from fastinsight.services.training.pipeline import check_and_activate, train
from fastinsight.services.training.retention import servable_floor
from fastinsight.storage.mongo.models import ModelVersionRepository
from tests.api.test_recommend import _ids, seed
from tests.conftest import ADMIN_KEY, API_KEY
from tests.ops.conftest import CLI, cli_env

Db = Database[dict[str, Any]]
ADMIN = {"X-API-Key": ADMIN_KEY}


@contextmanager
def replica(settings: Settings) -> Iterator[TestClient]:
    """A fresh API process on the same database (it starts from what is stored)."""
    with TestClient(create_app(settings), headers={"X-API-Key": API_KEY}) as client:
        yield client


def _recs(client: TestClient, user: str = "a0") -> list[str]:
    r = client.get(f"/v1/users/{user}/recommendations", params={"k": 6})
    assert r.status_code == 200, r.text
    return _ids(r)


def _buy(client: TestClient, user: str, item: str) -> None:
    r = client.post("/v1/interactions", json={"user_id": user, "item_id": item, "type": "purchase"})
    assert r.status_code in (200, 201), r.text


def test_a_replica_started_after_train_no_activate_still_excludes_what_the_user_just_bought(
    db: Db, settings: Settings
) -> None:
    seed(db, settings)
    v1 = train(db, settings, "itemknn", evaluate=False)["version"]
    with replica(settings) as first:
        assert _recs(first)[0] == "a3"
        _buy(first, "a0", "a3")
        assert "a3" not in _recs(first)

    # The real command, as an operator (or a retrain job with activate: false) runs it.
    done = subprocess.run([str(CLI), "train", "--algorithm", "itemknn", "--no-activate", "--no-evaluate"],
                          env=cli_env(settings), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    repo = ModelVersionRepository(db)
    assert repo.active_version() == v1 and len(repo.list()) == 2
    assert db["fresh_interactions"].count_documents({"user_id": "a0"}) == 1  # v1 still needs it

    with replica(settings) as second:
        got = _recs(second)
        assert got and "a3" not in got, got


def test_a_roll_back_to_an_older_kept_version_still_excludes_what_the_user_just_bought(
    db: Db, settings: Settings
) -> None:
    seed(db, settings)
    v1 = train(db, settings, "itemknn", evaluate=False)["version"]
    with replica(settings) as running:
        _buy(running, "a0", "a3")
        assert "a3" not in _recs(running)
        v2 = train(db, settings, "itemknn", evaluate=False)["version"]  # v2 was trained on it
        running.post(f"/v1/admin/models/{v2}/activate", headers=ADMIN).raise_for_status()
        assert "a3" not in _recs(running)
        # v2 turns out bad: back to v1, which never saw the purchase.
        r = running.post(f"/v1/admin/models/{v1}/activate", headers=ADMIN)
        assert r.status_code == 200, r.text
        got = _recs(running)  # the running process reads the buffer again at once
        assert got and "a3" not in got, got
    with replica(settings) as restarted:
        assert ModelVersionRepository(db).active_version() == v1
        got = _recs(restarted)
        assert got and "a3" not in got, got


def test_the_buffer_is_trimmed_up_to_the_oldest_servable_snapshot(db: Db, settings: Settings) -> None:
    settings = settings.model_copy(update={"model_keep_versions": 2})
    seed(db, settings)
    repo = ModelVersionRepository(db)
    fresh = db["fresh_interactions"]

    def taken(version: str) -> datetime:
        doc = repo.get(version)
        assert doc is not None
        return cast(datetime, doc["snapshot"]["taken_at"])

    v1 = train(db, settings, "popularity", evaluate=False)["version"]
    fresh.insert_one({"_id": "e", "user_id": "a0", "item_id": "b0", "type": "purchase",
                      "timestamp": datetime.now(UTC), "ingested_at": datetime.now(UTC)})
    v2 = train(db, settings, "popularity", evaluate=False, activate=False)["version"]
    assert servable_floor(db) == taken(v1) and fresh.count_documents({}) == 1  # v1 serves

    check_and_activate(db, settings, v2, "test")
    # v1 is kept for a roll-back and has not seen the event: it stays.
    assert servable_floor(db) == taken(v1) and fresh.count_documents({}) == 1

    repo.set_status(v1, "rejected", rejected_reason="test")  # can never be served again
    assert servable_floor(db) == taken(v2)
    repo.set_status(v1, "ready")

    v3 = train(db, settings, "popularity", evaluate=False)["version"]
    # keep=2 leaves v3 and v2 (the roll-back target); v1 is gone, and so is the event,
    # which both remaining versions were trained on.
    assert sorted(str(d["_id"]) for d in repo.list()) == sorted([v2, v3])
    assert servable_floor(db) == taken(v2)
    assert fresh.count_documents({}) == 0
