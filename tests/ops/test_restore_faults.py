"""A restore that fails at any point leaves the live database exactly as it was.

Each test fills the live database, takes its fingerprint (a hash of every document's raw
BSON, sorted by ``_id``) and its index specs, runs a restore that fails somewhere, and
compares both afterwards. The archives have valid checksums: the manifest is rebuilt
after each edit, so verification passes and the failure comes from the database.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import encode
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.database import Database

import fastinsight.ops.restore as restore_module
from fastinsight.ops.archive import MANIFEST_NAME, ArchiveError, iter_bson, verify_archive
from fastinsight.ops.dump import dump_database
from fastinsight.ops.restore import restore_archive
from fastinsight.ops.staging import (
    ASIDE_PREFIX,
    JOURNAL,
    STAGING_PREFIX,
    RestoreInProgress,
    Staging,
    recover_interrupted,
)
from tests.ops.conftest import ROOT, Db, fingerprint, index_specs, populate

Client = MongoClient[dict[str, Any]]
Edit = Callable[[str, bytes], bytes]


@pytest.fixture()
def client(mongo_uri: str) -> Iterator[Client]:
    c: Client = MongoClient(mongo_uri, tz_aware=True)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(autouse=True)
def _drop_work_databases(client: Client, db: Db) -> Iterator[None]:
    """The server is shared: whatever a failing test leaves behind goes with it."""
    yield
    for name in _leftovers(client, db.name):
        client.drop_database(name)


def _rebuild(archive: Path, out: Path, edit: Edit, manifest_edit: Callable[[dict[str, Any]], None]
             = lambda m: None) -> Path:
    """Copy ``archive`` with each member passed through ``edit`` and a manifest that
    matches the edited files (so the checksums stay valid)."""
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None
            members.append((member, handle.read()))
    manifest = json.loads(members[0][1])
    files = {f["path"]: f for f in manifest["files"]}
    edited = [(m, edit(m.name, data)) for m, data in members[1:]]
    for member, data in edited:
        entry = files[member.name]
        entry["sha256"], entry["bytes"] = hashlib.sha256(data).hexdigest(), len(data)
        if member.name.endswith(".bson"):
            entry["documents"] = sum(1 for _ in iter_bson(io.BytesIO(data)))
    manifest_edit(manifest)
    with tarfile.open(out, "w:gz") as tar:
        head = json.dumps(manifest).encode()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(head)
        tar.addfile(info, io.BytesIO(head))
        for member, data in edited:
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    verify_archive(out)  # valid checksums: only the database can object
    return out


def _duplicate_id_in(collection: str, at: int) -> Edit:
    """Document number ``at`` of ``collection`` gets the ``_id`` of the first one."""
    def edit(name: str, data: bytes) -> bytes:
        if not name.endswith(f"/{collection}.bson"):
            return data
        docs = list(iter_bson(io.BytesIO(data)))
        docs.insert(at, docs[0])
        return b"".join(docs)
    return edit


def _archive_of_other_data(client: Client, db: Db, tmp_path: Path) -> Path:
    """A good archive of *different* data under the live database's name."""
    other = client[f"{db.name}_src"]
    try:
        populate(other, users=60, items=50, interactions=900)
        good = dump_database(other, tmp_path / "good").archive
    finally:
        client.drop_database(other.name)
    return _rebuild(good, tmp_path / f"fastinsight-{db.name}-20240101T000000Z.tar.gz",
                    lambda n, d: d, lambda m: m.update(database=db.name))


def _leftovers(client: Client, target: str) -> list[str]:
    """Staging or undo databases that belong to restores into ``target``."""
    found = []
    for name in client.list_database_names():
        if name.startswith(STAGING_PREFIX):
            journal = client[name.removesuffix("_undo")][JOURNAL].find_one({"_id": "journal"})
            if (journal is None and name.endswith("_undo")) or (journal or {}).get("target") == target:
                found.append(name)
    return found


def _live(db: Db) -> tuple[Any, Any]:
    return fingerprint(db), index_specs(db)


def test_refused_document_midway_leaves_live_identical_and_dry_run_reports_it(
    client: Client, db: Db, tmp_path: Path
) -> None:
    populate(db)
    before = _live(db)
    good = _archive_of_other_data(client, db, tmp_path)
    # users.bson comes after interactions, items and the model files: they are all
    # loaded when the duplicate is refused (the old restore had dropped the live
    # database by then and left it half filled, without secondary indexes).
    broken = _rebuild(good, tmp_path / "dup.tar.gz", _duplicate_id_in("users", 30))

    with pytest.raises(ArchiveError, match=r"users: the database refused document 31 \(_id 'u0'\)"):
        restore_archive(client, broken, drop=True, dry_run=True)
    assert _live(db) == before

    with pytest.raises(ArchiveError, match=r"users: the database refused document 31.*duplicate"):
        restore_archive(client, broken, drop=True)
    assert _live(db) == before
    assert _leftovers(client, db.name) == []

    restored = restore_archive(client, good, drop=True, recount=True)  # the good one still works
    assert restored.inserted["users"] == 60 and db.users.count_documents({}) == 60


def test_dry_run_and_restore_agree_on_nested_arrays(client: Client, db: Db, tmp_path: Path) -> None:
    """FerretDB refuses nested arrays, MongoDB stores them: a dry run must predict which."""
    populate(db, users=5, items=4, interactions=20)
    before = _live(db)
    good = _archive_of_other_data(client, db, tmp_path)

    def nest(name: str, data: bytes) -> bytes:
        if not name.endswith("/items.bson"):
            return data
        docs = list(iter_bson(io.BytesIO(data)))
        docs.insert(10, encode({"_id": "nested", "item_id": "nested", "matrix": [[1, 2], [3]]}))
        return b"".join(docs)

    nested = _rebuild(good, tmp_path / "nested.tar.gz", nest)
    try:
        restore_archive(client, nested, drop=True, dry_run=True)
    except ArchiveError as exc:
        assert "items: the database refused document 11 (_id 'nested')" in exc.message
        with pytest.raises(ArchiveError, match="nested"):
            restore_archive(client, nested, drop=True)
        assert _live(db) == before
    else:
        assert _live(db) == before  # the dry run wrote nothing
        restore_archive(client, nested, drop=True)
        assert db.items.find_one({"_id": "nested"}) is not None
    assert _leftovers(client, db.name) == []


def test_manifest_count_disagreeing_with_its_files_fails_the_restore(
    client: Client, db: Db, tmp_path: Path
) -> None:
    """The restore compares what the database acknowledged with the manifest's totals."""
    populate(db, users=6, items=5, interactions=30)
    before = _live(db)
    good = _archive_of_other_data(client, db, tmp_path)

    def overstate(manifest: dict[str, Any]) -> None:
        for entry in manifest["collections"]:
            if entry["name"] == "users":
                entry["documents"] += 1

    bad = _rebuild(good, tmp_path / "count.tar.gz", lambda n, d: d, overstate)
    message = r"users: inserted 60 documents, the manifest lists 61"
    with pytest.raises(ArchiveError, match=message):
        restore_archive(client, bad, drop=True, dry_run=True)
    with pytest.raises(ArchiveError, match=message):
        restore_archive(client, bad, drop=True)
    assert _live(db) == before


def test_failure_while_switching_rolls_the_live_database_back(
    client: Client, db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server fails once most collections were replaced (the renamed ones and the
    copied ones, model_files.*) and users half written."""
    populate(db)
    db.extra.insert_one({"_id": "not in the archive"})  # --drop removes it
    before = _live(db)
    good = _archive_of_other_data(client, db, tmp_path)
    real_insert = restore_module._insert_stream
    failed: list[str] = []

    def failing_insert(target: Database[Any], name: str, handle: Any, *args: Any) -> Any:
        if target.name == db.name and name == "users":
            target[name].insert_many([RawBSONDocument(r) for _, r in zip(range(5), iter_bson(handle))])
            failed.append(name)
            raise ConnectionError("server went away")
        return real_insert(target, name, handle, *args)

    monkeypatch.setattr(restore_module, "_insert_stream", failing_insert)
    with pytest.raises(ConnectionError, match="server went away"):
        restore_archive(client, good, drop=True)
    assert failed == ["users"]
    assert _live(db) == before
    assert _leftovers(client, db.name) == []


def test_a_failed_roll_back_keeps_the_old_data_for_the_next_restore(
    client: Client, db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(db, users=10, items=8, interactions=60)
    before = _live(db)
    good = _archive_of_other_data(client, db, tmp_path)
    real_insert = restore_module._insert_stream

    def failing_insert(target: Database[Any], name: str, *args: Any) -> Any:
        if target.name == db.name and name == "users":
            raise ConnectionError("server went away")
        return real_insert(target, name, *args)

    def failing_rename_back(*args: Any) -> None:
        raise ConnectionError("still away")

    monkeypatch.setattr(restore_module, "_insert_stream", failing_insert)
    monkeypatch.setattr(Staging, "_rename_back", failing_rename_back)
    with pytest.raises(ConnectionError, match="still away"):
        restore_archive(client, good, drop=True)
    # Nothing of the old data was thrown away: the journal, the undo database (for the
    # dotted names) and the collections moved aside in the target are all still there.
    assert len(_leftovers(client, db.name)) == 2
    assert any(n.startswith(ASIDE_PREFIX) for n in db.list_collection_names())

    monkeypatch.undo()
    assert recover_interrupted(client, db.name) == 1
    assert _live(db) == before
    assert _leftovers(client, db.name) == []


CHILD = """
import os, signal, sys, time
from pathlib import Path
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
import fastinsight.ops.restore as restore
from fastinsight.ops.archive import iter_bson

uri, target, archive, mode, flag, fail_at = sys.argv[1:]
real_insert = restore._insert_stream

def insert(db, name, handle, *args):
    if db.name == target and name == fail_at:
        db[name].insert_many([RawBSONDocument(r) for _, r in zip(range(5), iter_bson(handle))])
        Path(flag).write_text("mid-switch")
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
    return real_insert(db, name, handle, *args)

restore._insert_stream = insert
restore.restore_archive(MongoClient(uri, tz_aware=True), Path(archive), target_db=target, drop=True)
"""


def _restore_in_child(mongo_uri: str, target: str, archive: Path, mode: str, tmp_path: Path,
                      fail_at: str) -> subprocess.Popen[bytes]:
    flag = tmp_path / f"{mode}.flag"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, mongo_uri, target, str(archive), mode, str(flag), fail_at],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert flag.exists(), proc.communicate(timeout=10)[1].decode()[-2000:]
    return proc


def test_restore_killed_mid_switch_is_rolled_back_by_the_next_one(
    client: Client, db: Db, mongo_uri: str, tmp_path: Path
) -> None:
    populate(db)
    before = _live(db)
    good = _archive_of_other_data(client, db, tmp_path)

    proc = _restore_in_child(mongo_uri, db.name, good, "kill", tmp_path, fail_at="users")
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert _live(db) != before  # kill -9 mid-switch: nothing could run in that process
    assert _leftovers(client, db.name)  # its journal
    assert any(n.startswith(ASIDE_PREFIX) for n in db.list_collection_names())

    assert recover_interrupted(client, db.name) == 1
    assert _live(db) == before
    assert _leftovers(client, db.name) == []
    restore_archive(client, good, drop=True)
    assert db.users.count_documents({}) == 60


def test_sigterm_mid_switch_rolls_back_before_exiting(
    client: Client, db: Db, mongo_uri: str, tmp_path: Path
) -> None:
    populate(db, users=10, items=8, interactions=60)
    before = _live(db)
    good = _archive_of_other_data(client, db, tmp_path)

    proc = _restore_in_child(mongo_uri, db.name, good, "term", tmp_path, fail_at="items")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr.decode()[-2000:]
    assert b"Terminated: stopped by signal" in stderr
    assert _live(db) == before
    assert _leftovers(client, db.name) == []


def test_a_running_restore_into_the_same_database_is_not_disturbed(
    client: Client, db: Db, tmp_path: Path
) -> None:
    populate(db, users=3, items=2, interactions=5)
    archive = dump_database(db, tmp_path).archive
    other = client[f"{STAGING_PREFIX}{os.urandom(6).hex()}"]
    try:
        other[JOURNAL].insert_one({
            "_id": "journal", "target": db.name, "state": "switching", "heartbeat": time.time(),
            "owner": {"host": socket.gethostname(), "pid": os.getppid()},  # alive, not us
            "existed": [], "dirty": ["users"],
        })
        with pytest.raises(RestoreInProgress, match="another restore"):
            restore_archive(client, archive, drop=True)
        assert db.users.count_documents({}) == 3
    finally:
        client.drop_database(other.name)
