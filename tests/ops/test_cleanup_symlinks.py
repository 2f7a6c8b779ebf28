"""Log clean-up never follows a symbolic link out of the log directory."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastinsight.config import Settings
from fastinsight.ops.cleanup import clean_logs, rotate_file
from tests.ops.conftest import SCRIPTS, cli_env


def _aged(path: Path, data: bytes, days: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (stamp, stamp))


def _outside_world(tmp_path: Path) -> tuple[Path, dict[Path, bytes]]:
    """A log directory whose entries link to files and a directory outside it."""
    logs, outside = tmp_path / "log", tmp_path / "precious"
    files = {
        outside / "passwd": b"root:x:0:0\n" * 100,  # big: would be rotated + truncated
        outside / "old.txt": b"keep me\n",  # old: would be truncated or deleted
        outside / "dir" / "job.log": b"job output\n",  # old, under a linked directory
    }
    for path, data in files.items():
        _aged(path, data, days=60)
    _aged(logs / "api.log", b"x" * 10, days=0)
    (logs / "evil.log").symlink_to(outside / "passwd")
    (logs / "stale.log").symlink_to(outside / "old.txt")
    (logs / "old.log.20240101T000000Z.gz").symlink_to(outside / "old.txt")
    (logs / "jobs").mkdir()
    (logs / "jobs" / "x.log").symlink_to(outside / "old.txt")
    (logs / "linked").symlink_to(outside / "dir")
    return logs, files


def test_symlinked_logs_and_directories_are_never_followed(tmp_path: Path) -> None:
    logs, files = _outside_world(tmp_path)
    report = clean_logs(logs, keep_days=14, rotate_bytes=100)

    for path, data in files.items():
        assert path.read_bytes() == data, f"{path} was changed through a link"
    assert report.rotated == [] and report.deleted == [] and report.failed == []
    assert sorted(Path(p).name for p in report.skipped) == [
        "evil.log", "linked", "old.log.20240101T000000Z.gz", "stale.log", "x.log"]
    # The links stay, and what they point at is not counted as the log directory's size.
    assert (logs / "evil.log").is_symlink() and report.bytes_before == 10
    assert not list(tmp_path.glob("precious/*.gz")) and not list(logs.glob("evil.log.*"))


def test_cleanup_script_leaves_targets_outside_the_log_dir_alone(
    settings: Settings, tmp_path: Path
) -> None:
    logs, files = _outside_world(tmp_path)
    proc = subprocess.run(
        [str(SCRIPTS / "cleanup_logs.sh"), "--logs-only", "--log-dir", str(logs), "--days", "1"],
        env=cli_env(settings), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for path, data in files.items():
        assert path.read_bytes() == data, f"{path} was changed through a link"
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["logs_rotated"] == [] and summary["logs_expired"] == []


def test_rotation_refuses_a_link_swapped_in_after_the_listing(tmp_path: Path) -> None:
    """The directory was listed, then the log was replaced by a link: nothing is followed."""
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"secret\n" * 10)
    log = tmp_path / "api.log"
    log.symlink_to(outside)
    try:
        rotate_file(log, datetime.now(UTC))
    except OSError:
        pass
    else:
        raise AssertionError("rotate_file followed a symbolic link")
    assert outside.read_bytes() == b"secret\n" * 10
    assert not list(tmp_path.glob("api.log.*.gz"))  # the half-made .gz is removed
    # A dangling link where the .gz would go is not written through either.
    real = tmp_path / "real.log"
    real.write_bytes(b"y" * 50)
    now = datetime(2024, 5, 1, tzinfo=UTC)
    trap = tmp_path / "trap-target"
    (tmp_path / "real.log.20240501T000000Z.gz").symlink_to(trap)
    rotated = rotate_file(real, now)
    assert rotated.name == "real.log.20240501T000000Z-2.gz" and not trap.exists()
    assert real.stat().st_size == 0
