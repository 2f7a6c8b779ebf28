"""Cron-like scheduler that submits operations jobs (``fastinsight scheduler``).

Times are UTC. A schedule that is overdue (the process was stopped or a check came
late) fires once and is then re-armed from the current time: missed runs are never
replayed in a burst. A job that is still running from its previous firing is skipped
(the per-kind lock answers 409), not queued.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from fastinsight.errors import Conflict, FastInsightError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Submit = Callable[[str, dict[str, Any]], object]


@dataclass(frozen=True)
class Schedule:
    name: str
    cron: str
    args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ValueError(f"schedule {self.name!r}: invalid cron expression {self.cron!r}")

    def next_after(self, moment: datetime) -> datetime:
        nxt: datetime = croniter(self.cron, moment).get_next(datetime)
        return nxt


def parse_schedules(
    config: Mapping[str, str], args: Mapping[str, Mapping[str, Any]] | None = None
) -> list[Schedule]:
    """``{"backup": "0 3 * * *", ...}``; an empty expression disables that job."""
    args = args or {}
    return [
        Schedule(name=name, cron=cron.strip(), args=dict(args.get(name, {})))
        for name, cron in sorted(config.items())
        if cron.strip()
    ]


@dataclass
class Firing:
    name: str
    at: datetime
    outcome: str


class Scheduler:
    def __init__(
        self,
        schedules: list[Schedule],
        submit: Submit,
        *,
        clock: Clock = lambda: datetime.now(UTC),
        max_sleep: float = 30.0,
    ) -> None:
        self.schedules = schedules
        self.submit = submit
        self.clock = clock
        self.max_sleep = max_sleep
        start = clock()
        self.next_run: dict[str, datetime] = {s.name: s.next_after(start) for s in schedules}

    def run_pending(self) -> list[Firing]:
        """Submit every schedule that is due now; returns what happened to each."""
        now = self.clock()
        fired: list[Firing] = []
        for schedule in self.schedules:
            if now < self.next_run[schedule.name]:
                continue
            self.next_run[schedule.name] = schedule.next_after(now)
            try:
                self.submit(schedule.name, dict(schedule.args))
                outcome = "submitted"
            except Conflict as exc:
                outcome = f"skipped: {exc.message}"
            except FastInsightError as exc:
                outcome = f"error: {exc.message}"
            except Exception as exc:  # the loop must survive a database hiccup
                log.exception("scheduler: submitting %s failed", schedule.name)
                outcome = f"error: {exc.__class__.__name__}"
            log.info(
                "scheduler: %s %s (next %s)", schedule.name, outcome, self.next_run[schedule.name].isoformat()
            )
            fired.append(Firing(schedule.name, now, outcome))
        return fired

    def seconds_until_next(self) -> float:
        if not self.next_run:
            return self.max_sleep
        soonest = min(self.next_run.values())
        return max(0.0, min(self.max_sleep, (soonest - self.clock()).total_seconds()))

    def run_forever(self, stop: threading.Event) -> None:
        log.info(
            "scheduler: %d schedules: %s",
            len(self.schedules),
            ", ".join(f"{s.name}={s.cron!r}" for s in self.schedules),
        )
        while not stop.is_set():
            self.run_pending()
            stop.wait(self.seconds_until_next() + 0.01)
