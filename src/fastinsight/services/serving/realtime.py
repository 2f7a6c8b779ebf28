"""What changed since the served model version, held in memory for the request path.

A recommendation must reflect an event posted a moment ago, yet a database round trip
per request costs more than the scoring itself. Each serving process therefore keeps:

- the real-time events (``fresh_interactions``) per user. Events this process stores
  are applied as they are written (``record``); events stored by other processes
  arrive by polling the collection every ``realtime_poll_seconds`` (one query for all
  users, re-reading a short overlap and de-duplicating by ``_id``);
- the erasure tombstones (digests of erased user ids), so a user erased through any
  process stops being served from the trained row within one poll;
- a bounded set of user ids confirmed to exist, so only unknown ids reach the database.

Events the served version already covers (ingested before its snapshot) are dropped
when a newer version is switched in. The database keeps them until no servable version
needs them (``services.training.retention.trim_realtime_buffer``), so a switch back to
an older version (a roll-back) reads them again.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastinsight.services.serving.background import Ticker
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.users import UserRepository, erasure_key

log = logging.getLogger(__name__)

Record = tuple[str, str, Any, datetime]  # item id, type, value, timestamp
OVERLAP = timedelta(seconds=2)  # re-read window: writes commit a little after their stamp
MAX_EVENTS_PER_USER = 1_000
KNOWN_USERS_CACHE = 200_000


class RealtimeState:
    def __init__(self, interactions: InteractionRepository, users: UserRepository) -> None:
        self.interactions = interactions
        self.users = users
        self._events: dict[str, list[tuple[datetime, str, Record]]] = {}
        self._ids: set[str] = set()
        self._erased: dict[str, datetime] = {}
        self._known: OrderedDict[str, None] = OrderedDict()
        self._cutoff: datetime | None = None
        self._fresh_cursor: datetime | None = None
        self._erasure_cursor: datetime | None = None
        # A roll-back asks for the whole buffer to be read again (the events between the
        # two snapshots were dropped from memory); a poll that started after the request
        # and succeeded answers it.
        self._reload_asked = 0
        self._reload_done = 0
        self._lock = threading.Lock()

    # ---- events --------------------------------------------------------------------
    def record(self, documents: Iterable[Document]) -> None:
        """Apply events this process has just stored (they carry ``ingested_at``)."""
        with self._lock:
            for doc in documents:
                self._add(doc)

    def _add(self, doc: Document) -> None:
        event_id = str(doc["_id"])
        ingested = doc.get("ingested_at") or datetime.now(UTC)
        if event_id in self._ids or (self._cutoff is not None and ingested <= self._cutoff):
            return
        self._ids.add(event_id)
        user = str(doc["user_id"])
        rows = self._events.setdefault(user, [])
        row = (ingested, event_id,
               (str(doc["item_id"]), str(doc["type"]), doc.get("value"), doc["timestamp"]))
        if rows and ingested < rows[-1][0]:  # read again after a roll-back: keep the order
            bisect.insort(rows, row, key=lambda r: r[0])
        else:
            rows.append(row)
        if len(rows) > MAX_EVENTS_PER_USER:
            del rows[: len(rows) - MAX_EVENTS_PER_USER]
        self._remember(user)

    def events(self, user_id: str) -> list[Record]:
        rows = self._events.get(user_id)
        return [r[2] for r in rows] if rows else []

    def set_cutoff(self, cutoff: datetime) -> None:
        """A version trained on data up to ``cutoff`` is served: drop what it covers.

        An older cutoff (a roll-back) reads the buffer again at once, so the events the
        older version has not seen are back before the next answer."""
        with self._lock:
            if self._cutoff is not None and cutoff < self._cutoff:
                self._cutoff = cutoff
                self._reload_asked += 1
                moved_back = True
            elif self._cutoff is not None and cutoff == self._cutoff:
                return
            else:
                moved_back = False
                self._drop_covered(cutoff)
        if moved_back:
            try:
                self.poll()
            except Exception:  # the poller reads the whole buffer on its next tick
                log.warning("real-time buffer not re-read after a roll-back; the poller retries",
                            exc_info=True)

    def _drop_covered(self, cutoff: datetime) -> None:
        self._cutoff = cutoff
        for user in list(self._events):
            kept = [r for r in self._events[user] if r[0] > cutoff]
            if kept:
                self._events[user] = kept
            else:
                del self._events[user]
        self._ids = {r[1] for rows in self._events.values() for r in rows}

    # ---- users ---------------------------------------------------------------------
    def erased_at(self, user_id: str) -> datetime | None:
        if not self._erased:
            return None
        return self._erased.get(erasure_key(user_id))

    def user_erased(self, user_id: str, when: datetime | None = None) -> None:
        """This process erased ``user_id``: forget it at once (others learn by polling)."""
        with self._lock:
            self._erase(erasure_key(user_id), when or datetime.now(UTC))

    def _erase(self, key: str, when: datetime) -> None:
        if self._erased.get(key) == when:
            return
        self._erased[key] = when
        for user in [u for u in self._events if erasure_key(u) == key]:
            for row in self._events.pop(user):
                self._ids.discard(row[1])
        for user in [u for u in self._known if erasure_key(u) == key]:
            del self._known[user]

    def is_known(self, user_id: str) -> bool:
        return user_id in self._known or user_id in self._events

    def remember(self, user_id: str) -> None:
        with self._lock:
            self._remember(user_id)

    def _remember(self, user_id: str) -> None:
        self._known[user_id] = None
        self._known.move_to_end(user_id)
        if len(self._known) > KNOWN_USERS_CACHE:
            self._known.popitem(last=False)

    # ---- polling -------------------------------------------------------------------
    def poll(self) -> int:
        """Read what other processes wrote since the last poll; returns new events."""
        started = datetime.now(UTC)
        with self._lock:
            reload = self._reload_asked
            whole = reload != self._reload_done
        since = self._fresh_cursor - OVERLAP if self._fresh_cursor and not whole else None
        docs = self.interactions.fresh_since(since)
        erasures = self.users.erasures_since(
            self._erasure_cursor - OVERLAP if self._erasure_cursor else None)
        with self._lock:
            before = len(self._ids)
            for tomb in erasures:
                self._erase(str(tomb["_id"]), tomb["erased_at"])
            for doc in docs:
                self._add(doc)
            added = len(self._ids) - before
            self._reload_done = max(self._reload_done, reload)
        self._fresh_cursor = started
        self._erasure_cursor = started
        return max(0, added)


# At most this share of wall time goes to polling. On MongoDB a poll is an index range
# read of about a millisecond, so the interval rules; on FerretDB it scans the
# real-time buffer (about 50 µs per buffered event), and a large buffer slows the poll
# down rather than keeping the server busy.
POLL_DUTY = 0.25


class RealtimePoller:
    """Loads the current state at start, then polls every ``interval`` seconds (longer
    when a poll itself is slow, see ``POLL_DUTY``)."""

    def __init__(self, state: RealtimeState, interval: float) -> None:
        self.state = state
        self._ticker = Ticker("realtime-poller", lambda: interval, self._poll, duty=POLL_DUTY)

    def _poll(self) -> None:
        self.state.poll()

    def start(self) -> None:
        try:
            self.state.poll()
        except Exception:  # the database may be down at start; the ticker retries
            log.warning("initial real-time load failed; the poller retries", exc_info=True)
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()
