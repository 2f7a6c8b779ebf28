"""Failures of background work are logged with their traceback, rate-limited (issue 18, item 11)."""

from __future__ import annotations

import logging
import time

import pytest

from fastinsight.logging_setup import FailureLog
from fastinsight.services.serving.background import Ticker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


def test_first_failure_with_traceback_then_a_summary_every_period_then_the_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    logger = logging.getLogger("tests.failure_log")
    failures = FailureLog(logger, "model-poller", every=300.0, clock=clock)
    caplog.set_level(logging.INFO, logger="tests.failure_log")

    def fail(message: str, kind: type[Exception] = ConnectionError) -> None:
        try:
            raise kind(message)
        except Exception as exc:
            failures.failed(exc)

    fail("connection refused")
    first = _records(caplog, "tests.failure_log")
    assert len(first) == 1 and first[0].exc_info is not None  # the traceback
    assert "connection refused" in first[0].getMessage()
    assert "ConnectionError" in first[0].getMessage()
    assert "fail" in caplog.text  # the frame that raised is in the logged traceback

    for n in range(50):  # a poll every 2 s for 100 s: nothing more
        clock.now += 2
        fail(f"connection refused #{n}")
    assert len(_records(caplog, "tests.failure_log")) == 1

    clock.now += 300
    fail("connection refused, still")
    summary = _records(caplog, "tests.failure_log")[-1]
    assert len(_records(caplog, "tests.failure_log")) == 2 and summary.exc_info is None
    assert "still failing: 52 failures" in summary.getMessage()
    assert "connection refused, still" in summary.getMessage()

    fail("bad document", ValueError)  # another kind of failure: its traceback once
    other = _records(caplog, "tests.failure_log")[-1]
    assert other.exc_info is not None and "ValueError: bad document" in other.getMessage()
    fail("bad document", ValueError)
    assert len(_records(caplog, "tests.failure_log")) == 3

    failures.succeeded()
    assert "recovered after 54 failures" in _records(caplog, "tests.failure_log")[-1].getMessage()
    failures.succeeded()  # nothing to report
    assert len(_records(caplog, "tests.failure_log")) == 4

    fail("down again")  # a new streak starts with a traceback again
    assert _records(caplog, "tests.failure_log")[-1].exc_info is not None


def test_a_failing_poller_logs_the_exception_and_its_traceback_once_per_streak(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        raise RuntimeError("the database said no")

    caplog.set_level(logging.WARNING, logger="fastinsight.services.serving.background")
    ticker = Ticker("test-poller", lambda: 0.01, step, max_backoff=0)
    ticker.start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        ticker.stop()
    assert len(calls) >= 10
    logged = _records(caplog, "fastinsight.services.serving.background")
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert logged[0].exc_info is not None
    assert "test-poller failed: RuntimeError: the database said no" in logged[0].getMessage()
    assert "in step" in caplog.text  # where it was raised
