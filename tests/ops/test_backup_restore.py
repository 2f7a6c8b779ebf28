"""Backup -> wipe -> restore round trips, archive verification and the restore guards."""

from __future__ import annotations

import io
import subprocess
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bson import json_util
from pymongo import MongoClient

from fastinsight.config import Settings
from fastinsight.errors import Unavailable
from fastinsight.ops.archive import MANIFEST_NAME, ArchiveError, iter_bson, verify_archive
from fastinsight.ops.dump import apply_retention, dump_database
from fastinsight.ops.maintenance import FLAG_ID, STATE_COLLECTION, WriteGate, read_flag
from fastinsight.ops.restore import TargetNotEmpty, restore_archive
from tests.ops.conftest import SCRIPTS, Db, cli_env, fingerprint, index_specs, populate


def test_backup_wipe_restore_gives_identical_documents_and_indexes(
    db: Db, mongo_uri: str, tmp_path: Path
) -> None:
    populate(db)
    result = dump_database(db, tmp_path, pause_writes=True, pause_grace_seconds=0)
    before, before_indexes = fingerprint(db), index_specs(db)

    assert result.archive.name.startswith(f"fastinsight-{db.name}-")
    assert result.manifest.consistency == "writes-paused"
    counts = {c.name: c.documents for c in result.manifest.collections}
    assert counts["users"] == 40 and counts["items"] == 30 and counts["interactions"] == 400
    assert read_flag(db) is None  # the pause flag is cleared afterwards

    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        client.drop_database(db.name)
        assert db.list_collection_names() == []
        restored = restore_archive(client, result.archive, recount=True)
    finally:
        client.close()
    assert restored.target_db == db.name
    assert set(restored.phases) == {"verify", "insert", "indexes", "switch", "recount"}
    # The archive holds the pause flag; restore removes it, so service_state is empty again.
    assert fingerprint(db) == before
    assert before["interactions"][0] == 400 and before["model_files.chunks"][0] == 2
    assert index_specs(db) == before_indexes
    assert ("type_ts", (("type", 1), ("timestamp", -1)), False) in before_indexes["interactions"]


def test_archive_uses_mongodump_layout(db: Db, tmp_path: Path) -> None:
    populate(db, users=3, items=2, interactions=5)
    archive = dump_database(db, tmp_path).archive
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        assert names[0] == MANIFEST_NAME
        assert f"{db.name}/users.bson" in names and f"{db.name}/users.metadata.json" in names
        meta_file = tar.extractfile(f"{db.name}/users.metadata.json")
        bson_file = tar.extractfile(f"{db.name}/users.bson")
        assert meta_file is not None and bson_file is not None
        meta_text = meta_file.read().decode()
        docs = list(iter_bson(io.BytesIO(bson_file.read())))
    meta = json_util.loads(meta_text)
    assert meta["collectionName"] == "users" and meta["type"] == "collection"
    assert '"v": {"$numberInt": "2"}' in meta_text  # canonical extended JSON, as mongodump
    names_in_meta = {ix["name"] for ix in meta["indexes"]}
    assert {"_id_", "user_id_unique", "created_at"} <= names_in_meta
    assert len(docs) == 3


def test_restore_into_another_database(db: Db, mongo_uri: str, tmp_path: Path) -> None:
    populate(db, users=5, items=4, interactions=20)
    archive = dump_database(db, tmp_path).archive
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri, tz_aware=True)
    other = f"{db.name}_copy"
    try:
        restore_archive(client, archive, target_db=other)
        assert fingerprint(client[other]) == fingerprint(db)
    finally:
        client.drop_database(other)
        client.close()


def _rewrite_member(archive: Path, target: Path, member_name: str) -> None:
    """Copy ``archive`` with one byte of ``member_name`` changed (gzip and tar stay valid)."""
    with tarfile.open(archive) as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            handle = src.extractfile(member)
            assert handle is not None
            data = bytearray(handle.read())
            if member.name == member_name:
                data[len(data) // 2] ^= 0xFF
            dst.addfile(member, io.BytesIO(bytes(data)))


def test_corrupted_archives_are_refused(db: Db, mongo_uri: str, tmp_path: Path) -> None:
    populate(db, users=5, items=4, interactions=50)
    archive = dump_database(db, tmp_path / "ok").archive

    tampered = tmp_path / "tampered.tar.gz"
    _rewrite_member(archive, tampered, f"{db.name}/interactions.bson")
    with pytest.raises(ArchiveError, match=r"interactions\.bson: checksum/size/count mismatch"):
        verify_archive(tampered)

    flipped = tmp_path / "flipped.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        verify_archive(flipped)

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: len(data) // 2])
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri)
    target = f"{db.name}_never"
    try:
        with pytest.raises(ArchiveError):
            restore_archive(client, truncated, target_db=target)
        assert client[target].list_collection_names() == []  # nothing was written
    finally:
        client.drop_database(target)
        client.close()


def test_restore_refuses_non_empty_target_unless_drop(db: Db, mongo_uri: str, tmp_path: Path) -> None:
    populate(db, users=4, items=3, interactions=10)
    archive = dump_database(db, tmp_path).archive
    db.users.insert_one({"_id": "added-after-backup", "user_id": "added-after-backup"})
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        with pytest.raises(TargetNotEmpty, match="not empty"):
            restore_archive(client, archive)
        assert db.users.count_documents({}) == 5
        dry = restore_archive(client, archive, drop=True, dry_run=True)
        assert dry.inserted["users"] == 4 and db.users.count_documents({}) == 5
        restore_archive(client, archive, drop=True)
        assert db.users.count_documents({}) == 4
        assert db.users.find_one({"_id": "added-after-backup"}) is None
    finally:
        client.close()


def test_restore_script_exit_codes(db: Db, settings: Settings, tmp_path: Path) -> None:
    """restore.sh: 4 on a non-empty target, 3 on a corrupt file, 0 with --drop."""
    populate(db, users=3, items=2, interactions=4)
    archive = dump_database(db, tmp_path / "backups").archive
    env = cli_env(settings)

    refused = subprocess.run(
        [str(SCRIPTS / "restore.sh"), str(archive)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 4, refused.stderr
    assert "not empty" in refused.stderr

    corrupt = tmp_path / "fastinsight-x-20240101T000000Z.tar.gz"
    corrupt.write_bytes(archive.read_bytes()[:-200])
    bad = subprocess.run(
        [str(SCRIPTS / "restore.sh"), str(corrupt), "--target-db", f"{db.name}_x", "--drop"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 3, bad.stderr
    assert "corrupt" in bad.stderr or "mismatch" in bad.stderr


def test_retention_keeps_newest_and_recent(tmp_path: Path) -> None:
    now = datetime(2024, 6, 30, 12, tzinfo=UTC)
    names = []
    for days_ago in (0, 1, 2, 10, 20, 40):
        stamp = (now - timedelta(days=days_ago)).strftime("%Y%m%dT%H%M%SZ")
        path = tmp_path / f"fastinsight-prod-{stamp}.tar.gz"
        path.write_bytes(b"x")
        names.append(path.name)
    (tmp_path / "unrelated.tar.gz").write_bytes(b"x")

    deleted = apply_retention(tmp_path, keep=2, keep_days=15, now=now)
    assert sorted(p.name for p in deleted) == sorted(names[4:])  # 20 and 40 days old
    deleted = apply_retention(tmp_path, keep=2, keep_days=None, now=now)
    assert sorted(p.name for p in deleted) == sorted(names[2:4])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[:2], "unrelated.tar.gz"])


def test_write_gate_reports_pause(db: Db) -> None:
    clock = [0.0]
    gate = WriteGate(db, ttl=1.0, clock=lambda: clock[0])
    gate.check()
    db[STATE_COLLECTION].insert_one({"_id": FLAG_ID, "read_only": True, "reason": "backup"})
    gate.check()  # cached for ttl seconds
    clock[0] = 1.5
    with pytest.raises(Unavailable, match="paused for maintenance"):
        gate.check()


def test_runtime_state_is_not_restored(db: Db, mongo_uri: str, tmp_path: Path) -> None:
    """Job locks are not backed up; jobs that were running at backup time come back failed."""
    now = datetime(2024, 5, 1, tzinfo=UTC)
    db.job_locks.insert_one({"_id": "backup", "job_id": "j1", "acquired_at": now})
    db.jobs.insert_many(
        [
            {"_id": "j1", "name": "backup", "status": "running", "created_at": now},
            {"_id": "j0", "name": "backup", "status": "succeeded", "created_at": now},
        ]
    )
    result = dump_database(db, tmp_path)
    assert "job_locks" not in {c.name for c in result.manifest.collections}
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        restore_archive(client, result.archive, drop=True)
    finally:
        client.close()
    assert db.job_locks.find_one({"_id": "backup"}) is None
    running = db.jobs.find_one({"_id": "j1"})
    assert running is not None and running["status"] == "failed"
    assert "restored from a backup" in running["error"]
    done = db.jobs.find_one({"_id": "j0"})
    assert done is not None and done["status"] == "succeeded"


def test_job_history_does_not_make_a_target_non_empty(db: Db, mongo_uri: str, tmp_path: Path) -> None:
    """A restore job writes its own record and lock into the empty database it restores;
    only archived "running" records are marked failed, never the live one."""
    db.users.insert_one({"_id": "u1", "user_id": "u1"})
    db.jobs.insert_one({"_id": "old", "name": "backup", "status": "running"})
    archive = dump_database(db, tmp_path).archive
    db.users.drop()
    db.jobs.drop()
    db.jobs.insert_one({"_id": "restore-job", "name": "restore", "status": "running"})
    db.job_locks.insert_one({"_id": "restore", "job_id": "restore-job"})
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri, tz_aware=True)
    try:
        restore_archive(client, archive)
    finally:
        client.close()
    assert db.users.find_one({"_id": "u1"}) == {"_id": "u1", "user_id": "u1"}
    assert db.job_locks.find_one({"_id": "restore"}) is not None
    live = db.jobs.find_one({"_id": "restore-job"})
    assert live is not None and live["status"] == "running"
    archived = db.jobs.find_one({"_id": "old"})
    assert archived is not None and archived["status"] == "failed"
