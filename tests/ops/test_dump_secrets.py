"""mongodump never sees the password on its command line, and is stopped when it hangs.

mongodump is not installed here: a stand-in on ``PATH`` records what it was given (its
argv, and the mode and content of the ``--config`` file) and writes a one-collection tree.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from fastinsight.ops.archive import ArchiveError, verify_archive
from fastinsight.ops.dump import dump_database
from tests.ops.conftest import Db

PASSWORD = "s3cr3t-Pa55"
URI = f"mongodb://backup:{PASSWORD}@127.0.0.1:27017/?authSource=admin"

FAKE = """#!{python}
import json, os, pathlib, stat, sys, time
record = pathlib.Path({record!r})
args = sys.argv[1:]
opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
config = pathlib.Path(opts.get("config", "/nonexistent"))
seen = {{
    "argv": sys.argv,
    "cmdline": pathlib.Path(f"/proc/{{os.getpid()}}/cmdline").read_bytes().decode(),
    "config": opts.get("config"),
    "config_mode": stat.S_IMODE(config.stat().st_mode) if config.exists() else None,
    "config_text": config.read_text() if config.exists() else None,
}}
record.write_text(json.dumps(seen))
mode = {mode!r}
if mode == "hang":
    time.sleep(60)
if mode == "fail":
    sys.stderr.write("Failed: connecting to {uri}: auth failed\\n")
    sys.exit(1)
base = pathlib.Path(opts["out"]) / opts["db"]
base.mkdir(parents=True)
doc = bytes.fromhex("0e000000105f6964000100000000")  # {{"_id": 1}}
(base / "things.bson").write_bytes(doc)
meta = {{"indexes": [], "collectionName": "things", "type": "collection", "options": {{}}}}
(base / "things.metadata.json").write_text(json.dumps(meta))
"""


def _fake_mongodump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> Path:
    bin_dir, record = tmp_path / "bin", tmp_path / "seen.json"
    bin_dir.mkdir()
    script = bin_dir / "mongodump"
    script.write_text(FAKE.format(python=sys.executable, record=str(record), mode=mode, uri=URI))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return record


def test_mongodump_gets_the_uri_in_a_private_config_file(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _fake_mongodump(tmp_path, monkeypatch, "ok")
    result = dump_database(db, tmp_path / "out", uri=URI, tool="mongodump")

    seen = json.loads(record.read_text())
    assert not any(PASSWORD in arg for arg in seen["argv"]), seen["argv"]
    assert PASSWORD not in seen["cmdline"]  # what `ps` shows
    assert seen["config_mode"] == stat.S_IRUSR | stat.S_IWUSR  # 0600
    assert json.loads(seen["config_text"].split(":", 1)[1]) == URI
    assert not Path(seen["config"]).exists()  # deleted afterwards
    assert result.manifest.tool == "mongodump"
    assert [c.name for c in result.manifest.collections] == ["things"]
    verify_archive(result.archive)


def test_a_failing_mongodump_does_not_leak_the_password(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _fake_mongodump(tmp_path, monkeypatch, "fail")
    with pytest.raises(ArchiveError, match="mongodump failed") as failure:
        dump_database(db, tmp_path / "out", uri=URI, tool="mongodump")
    assert PASSWORD not in failure.value.message and "***" in failure.value.message
    assert not Path(json.loads(record.read_text())["config"]).exists()


def test_a_hanging_mongodump_is_stopped(
    db: Db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _fake_mongodump(tmp_path, monkeypatch, "hang")
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="did not finish within 1s"):
        dump_database(db, tmp_path / "out", uri=URI, tool="mongodump", mongodump_timeout=1)
    assert time.monotonic() - started < 30
    assert not Path(json.loads(record.read_text())["config"]).exists()
    assert list((tmp_path / "out").iterdir()) == []  # no archive, no staging left
