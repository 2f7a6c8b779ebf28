"""Process helpers for the job runner: liveness, killing a process group, output tails."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds; reap the child."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def kill_orphan(pid: int) -> None:
    """Kill a dead runner's child group, only if ``pid`` still leads its own session.

    The runner starts every command with ``start_new_session``, so a surviving command
    is a session leader; a pid that was reused by something else usually is not.
    """
    try:
        if os.getsid(pid) != pid:
            return
        os.killpg(pid, signal.SIGKILL)
        log.warning("killed orphaned job process group %d", pid)
    except (ProcessLookupError, PermissionError):
        return


def tail_of(path: Path, limit: int) -> str:
    """The last ``limit`` characters of a (UTF-8, possibly partial) log file."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit * 4))
            return fh.read().decode("utf-8", errors="replace")[-limit:]
    except OSError:
        return ""


def aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
