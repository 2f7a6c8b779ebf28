"""One retention rule for model versions, used by training and by ``fastinsight cleanup``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.ops.cleanup import prune_model_versions
from fastinsight.services.training.pipeline import check_and_activate, train
from fastinsight.services.training.retention import StoredVersion, plan_retention, prune_versions
from fastinsight.storage.mongo.insights import INSIGHT_SNAPSHOTS
from fastinsight.storage.mongo.models import CHUNKS, ModelVersionRepository
from tests.api.test_recommend import seed

Db = Database[dict[str, Any]]
BASE = datetime(2024, 1, 1, tzinfo=UTC)


def _v(n: int, *, rejected: bool = False, activated: int | None = None) -> StoredVersion:
    return StoredVersion(f"v{n}", BASE + timedelta(days=n), rejected,
                         None if activated is None else BASE + timedelta(days=activated))


# ---- the rule (pure) ----------------------------------------------------------------------
def test_keep_counts_the_active_version_and_takes_the_newest_others() -> None:
    plan = plan_retention([_v(n) for n in range(6)], "v5", 3)
    assert plan.keep == ["v5", "v4", "v3"]
    assert plan.delete == ["v2", "v1", "v0"]


def test_an_old_active_version_is_kept_and_takes_one_place() -> None:
    plan = plan_retention([_v(n) for n in range(6)], "v0", 3)
    assert plan.keep == ["v0", "v5", "v4"]
    assert plan.delete == ["v3", "v2", "v1"]


def test_the_version_active_before_is_kept_for_roll_back() -> None:
    # v2 served until v3 was trained; v4 was never activated.
    versions = [_v(0, activated=0), _v(1, activated=1), _v(2, activated=2), _v(3, activated=3), _v(4)]
    plan = plan_retention(versions, "v3", 2)
    assert plan.keep == ["v3", "v2"]
    # After a roll-back from v4 to v1, v4 is what a second roll-back returns to.
    versions = [_v(1, activated=9), _v(2, activated=2), _v(3), _v(4, activated=5)]
    assert plan_retention(versions, "v1", 2).keep == ["v1", "v4"]


def test_rejected_versions_only_fill_places_left_over() -> None:
    versions = [_v(0, activated=0), _v(1), _v(2, rejected=True), _v(3, rejected=True)]
    assert plan_retention(versions, "v0", 2).keep == ["v0", "v1"]
    assert plan_retention(versions, "v0", 3).keep == ["v0", "v1", "v3"]
    assert plan_retention(versions, "v0", 10).delete == []


def test_without_an_active_version_the_newest_are_kept() -> None:
    assert plan_retention([_v(n) for n in range(4)], None, 2).keep == ["v3", "v2"]
    assert plan_retention([_v(0)], "gone", 2).keep == ["v0"]  # a dangling pointer takes no place


def test_keep_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        plan_retention([_v(0)], "v0", 1)


def test_versions_running_experiments_serve_are_kept_beyond_the_places() -> None:
    versions = [_v(n) for n in range(5)]
    plan = plan_retention(versions, "v4", 2, in_use=frozenset({"v0", "v1"}))
    assert plan.keep == ["v4", "v3", "v1", "v0"] and plan.delete == ["v2"]


# ---- against the real database -----------------------------------------------------------
@pytest.fixture()
def other_db(mongo_uri: str) -> Iterator[Db]:
    name = f"fi_test_{uuid.uuid4().hex[:12]}"
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


def _store(db: Db, tmp_path: Path) -> None:
    """Five versions; the oldest is active (a roll-back happened); v3 was rejected."""
    repo = ModelVersionRepository(db)
    for i in range(5):
        art = tmp_path / db.name / f"v{i}"
        art.mkdir(parents=True)
        (art / "arrays.npz").write_bytes(bytes([i]) * 1000)
        (art / "meta.json").write_text("{}")
        status = "rejected" if i == 3 else "ready"
        repo.save({"version": f"v{i}", "created_at": BASE + timedelta(days=i), "status": status}, art)
        db[INSIGHT_SNAPSHOTS].insert_one({"_id": f"coverage:v{i}", "version": f"v{i}"})
    repo.activate("v4")
    repo.activate("v0")


def _stored(db: Db) -> tuple[list[str], list[str], list[str]]:
    docs = sorted(str(d["_id"]) for d in db.model_versions.find({}))
    chunks = sorted({str(c["version"]) for c in db[CHUNKS].find({}, {"version": 1})})
    coverage = sorted(str(d["version"]) for d in db[INSIGHT_SNAPSHOTS].find({}))
    return docs, chunks, coverage


def test_training_and_cleanup_keep_the_same_versions(db: Db, other_db: Db, tmp_path: Path) -> None:
    _store(db, tmp_path)
    _store(other_db, tmp_path)

    dry = prune_model_versions(other_db, keep=3, dry_run=True)
    assert _stored(other_db)[0] == ["v0", "v1", "v2", "v3", "v4"]

    by_training = prune_versions(db, 3)  # what every training run calls
    by_cleanup = prune_model_versions(other_db, keep=3)

    assert by_training.keep == by_cleanup.kept == dry.kept == ["v0", "v4", "v2"]
    assert sorted(by_training.delete) == sorted(by_cleanup.deleted) == ["v1", "v3"]
    for database in (db, other_db):
        assert ModelVersionRepository(database).active_version() == "v0"  # the oldest, still here
        docs, chunks, coverage = _stored(database)
        assert docs == chunks == coverage == ["v0", "v2", "v4"]  # artefacts of v1, v3 are gone


def test_training_prunes_with_the_rule_and_keeps_the_roll_back_target(
    db: Db, settings: Settings
) -> None:
    settings = settings.model_copy(update={"model_keep_versions": 2})
    seed(db, settings)
    first = train(db, settings, "popularity", evaluate=False)["version"]
    second = train(db, settings, "popularity", evaluate=False)["version"]
    check_and_activate(db, settings, first, "roll-back")  # second was bad
    third = train(db, settings, "popularity", evaluate=False)["version"]

    repo = ModelVersionRepository(db)
    assert repo.active_version() == third
    # The roll-back target is the version served before the third, not the newer second.
    assert sorted(str(d["_id"]) for d in repo.list(limit=None)) == sorted([first, third])
    assert {str(c["version"]) for c in db[CHUNKS].find({}, {"version": 1})} == {first, third}
    assert second not in {str(d["_id"]) for d in db.model_versions.find({})}
    # Clean-up on the same data agrees: nothing more to delete.
    report = prune_model_versions(db, keep=settings.model_keep_versions)
    assert report.deleted == [] and sorted(report.kept) == sorted([first, third])


def test_pruning_keeps_a_version_a_running_experiment_serves(db: Db, tmp_path: Path) -> None:
    _store(db, tmp_path)
    db.experiments.insert_one({"_id": "e1", "stopped_at": None,
                               "arms": [{"name": "a", "model_version": "v1"}, {"name": "b"}]})
    db.experiments.insert_one({"_id": "e2", "stopped_at": BASE, "arms": [{"model_version": "v2"}]})
    plan = prune_versions(db, 2)
    assert sorted(plan.keep) == ["v0", "v1", "v4"]  # active, roll-back target, and e1's arm
    assert _stored(db)[0] == ["v0", "v1", "v4"]  # a stopped experiment pins nothing
