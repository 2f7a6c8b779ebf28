"""Structured JSON logs (one object per line) with the request id, file rotation, and
rate-limited logging of failures that repeat (``FailureLog``)."""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(
    level: str = "INFO", json_logs: bool = True, log_file: Path | None = None
) -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        if getattr(handler, "_fastinsight", False):
            root.removeHandler(handler)
    formatter: logging.Formatter = (
        JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            log_file, maxBytes=20 * 1024 * 1024, backupCount=5, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler._fastinsight = True  # type: ignore[attr-defined]
        root.addHandler(handler)


class FailureLog:
    """Logs a failure that repeats (a poller while the database is down) without
    flooding the log or hiding what went wrong.

    The first failure of a streak is logged with its traceback, and so is the first of
    each other kind of exception during the streak; while the streak lasts, one summary
    line every ``every`` seconds (how many failures, since when, the last error); the
    first success afterwards logs the recovery. Thread-safe enough for one writer per
    instance (each poller owns one).
    """

    def __init__(
        self, logger: logging.Logger, what: str, *, every: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.every = every
        self.clock = clock
        self.failures = 0
        self._since = 0.0
        self._summary_at = 0.0
        self._kinds: set[str] = set()

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        kind = exc.__class__.__name__
        self.failures += 1
        if self.failures == 1:
            self._since = self._summary_at = now
            self._kinds = {kind}
            self.logger.warning("%s failed: %s: %s", self.what, kind, exc, exc_info=exc)
        elif kind not in self._kinds:
            self._kinds.add(kind)
            self.logger.warning("%s failed differently (failure %d of this streak): %s: %s",
                                self.what, self.failures, kind, exc, exc_info=exc)
        elif now - self._summary_at >= self.every:
            self._summary_at = now
            self.logger.warning("%s still failing: %d failures in %.0fs, last: %s: %s",
                                self.what, self.failures, now - self._since, kind, exc)

    def succeeded(self) -> None:
        if self.failures:
            self.logger.warning("%s recovered after %d failures in %.0fs", self.what,
                                self.failures, self.clock() - self._since)
            self.failures = 0
            self._kinds = set()
