"""What changed since the served model version, held in memory for the request path.

A recommendation must reflect an event posted a moment ago, yet a database round trip
per request costs more than the scoring itself. Each serving process therefore keeps:

- the real-time events (``fresh_interactions``) per user. Events this process stores
  are applied as they are written (``record``); events stored by other processes
  arrive by polling the collection every ``realtime_poll_seconds`` (one query for all
  users, re-reading a short overlap and de-duplicating by ``_id``), read and applied in
  batches of ``LOAD_BATCH``, so start-up streams the buffer instead of loading it whole;
- the erasure tombstones (digests of erased user ids), so a user erased through any
  process stops being served from the trained row within one poll;
- a bounded set of user ids confirmed to exist, so only unknown ids reach the database.

Memory is bounded twice: at most ``MAX_EVENTS_PER_USER`` events per user (the newest),
and at most ``max_users`` users (``FASTINSIGHT_REALTIME_MAX_USERS``), the least recently
used ones evicted first. An evicted user is remembered in a fixed-size filter (no false
negatives); their next request, or an event of theirs, reads their events back from the
database (``fresh_of_user``) before the answer is computed, so eviction costs a read,
never a wrong answer. Once a new version covers everything evicted, the filter is reset.

Events the served version already covers (ingested before its snapshot) are dropped
when a newer version is switched in. The database keeps them until no servable version
needs them (``services.training.retention.trim_realtime_buffer``), so a switch back to
an older version (a roll-back) reads them again.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastinsight.services.serving.background import Ticker
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.users import UserRepository, erasure_key

log = logging.getLogger(__name__)

Record = tuple[str, str, Any, datetime]  # item id, type, value, timestamp
Row = tuple[datetime, str, Record]  # ingested at, event id, record
OVERLAP = timedelta(seconds=2)  # re-read window: writes commit a little after their stamp
MAX_EVENTS_PER_USER = 1_000
KNOWN_USERS_CACHE = 200_000
LOAD_BATCH = 5_000  # events read and applied per step of a poll
DEFAULT_MAX_USERS = 100_000


class SpillFilter:
    """Users whose events were evicted from memory: a Bloom filter of fixed size (1 MiB).

    It never misses a user it was given; it names a user it was not given with a small
    probability (about 2% after a million evictions), which costs that user one read.
    """

    BITS = 1 << 23
    HASHES = 4

    def __init__(self) -> None:
        self._bits = bytearray(self.BITS // 8)
        self.count = 0

    def _positions(self, user_id: str) -> list[int]:
        digest = hashlib.blake2b(user_id.encode(), digest_size=4 * self.HASHES).digest()
        return [int.from_bytes(digest[4 * n: 4 * n + 4], "little") % self.BITS
                for n in range(self.HASHES)]

    def add(self, user_id: str) -> None:
        for bit in self._positions(user_id):
            self._bits[bit >> 3] |= 1 << (bit & 7)
        self.count += 1

    def __contains__(self, user_id: str) -> bool:
        if not self.count:
            return False
        return all(self._bits[bit >> 3] & (1 << (bit & 7)) for bit in self._positions(user_id))

    def clear(self) -> None:
        if self.count:
            self._bits = bytearray(self.BITS // 8)
            self.count = 0


def _record(doc: Document) -> Record:
    return str(doc["item_id"]), str(doc["type"]), doc.get("value"), doc["timestamp"]


class RealtimeState:
    def __init__(self, interactions: InteractionRepository, users: UserRepository,
                 max_users: int = DEFAULT_MAX_USERS) -> None:
        self.interactions = interactions
        self.users = users
        self.max_users = max_users
        self._events: OrderedDict[str, list[Row]] = OrderedDict()  # least recently used first
        self._ids: set[str] = set()
        self._spilled = SpillFilter()
        self._spilled_until: datetime | None = None  # newest event among the evicted
        self._partial: set[str] = set()  # in memory, but may lack events evicted earlier
        self._clean: OrderedDict[str, None] = OrderedDict()  # read back: nothing buffered
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
        # Methods called with the erasure key of each user erased (here or, through the
        # poll, in another process), under this state's lock: what else holds the user's
        # data drops it. Held weakly: a service dropped with its experiment arm goes.
        self._erase_listeners: list[weakref.WeakMethod[Callable[[str], None]]] = []

    def on_erase(self, method: Callable[[str], None]) -> None:
        """Call the bound ``method`` with the erasure key of every user erased from now on,
        for as long as its object lives."""
        with self._lock:
            self._erase_listeners.append(weakref.WeakMethod(method))

    # ---- events --------------------------------------------------------------------
    def record(self, documents: Iterable[Document]) -> None:
        """Apply events this process has just stored (they carry ``ingested_at``)."""
        with self._lock:
            for doc in documents:
                self._add(doc)

    def _add(self, doc: Document) -> bool:
        event_id = str(doc["_id"])
        ingested = doc.get("ingested_at") or datetime.now(UTC)
        if event_id in self._ids or (self._cutoff is not None and ingested <= self._cutoff):
            return False
        self._ids.add(event_id)
        user = str(doc["user_id"])
        rows = self._events.get(user)
        if rows is None:
            rows = self._events[user] = []
            if user not in self._clean and user in self._spilled:
                self._partial.add(user)  # the rest is read back on the next request
            self._clean.pop(user, None)
        else:
            self._events.move_to_end(user)
        row = (ingested, event_id, _record(doc))
        if rows and ingested < rows[-1][0]:  # read again after a roll-back: keep the order
            bisect.insort(rows, row, key=lambda r: r[0])
        else:
            rows.append(row)
        if len(rows) > MAX_EVENTS_PER_USER:
            for row in rows[: len(rows) - MAX_EVENTS_PER_USER]:
                self._ids.discard(row[1])
            del rows[: len(rows) - MAX_EVENTS_PER_USER]
        self._remember(user)
        self._evict()
        return True

    def _evict(self) -> None:
        while len(self._events) > self.max_users:
            user, rows = self._events.popitem(last=False)
            self._partial.discard(user)
            for row in rows:
                self._ids.discard(row[1])
            self._spilled.add(user)
            newest = max(row[0] for row in rows)
            if self._spilled_until is None or newest > self._spilled_until:
                self._spilled_until = newest

    def in_memory(self, user_id: str) -> bool:
        """True when ``events`` answers without a database read."""
        if user_id in self._partial:
            return False
        return user_id in self._events or user_id not in self._spilled or user_id in self._clean

    def events(self, user_id: str) -> list[Record]:
        """The user's events since the served version, oldest first (read back from the
        database if they were evicted from memory)."""
        rows = self._events.get(user_id)
        if rows is not None and user_id not in self._partial:
            if self._lock.acquire(blocking=False):  # recency is a hint: never wait for it
                try:
                    if user_id in self._events:
                        self._events.move_to_end(user_id)
                finally:
                    self._lock.release()
            return [r[2] for r in rows]
        if rows is None and (user_id not in self._spilled or user_id in self._clean):
            return []
        return self._read_back(user_id)

    def _read_back(self, user_id: str) -> list[Record]:
        started = datetime.now(UTC)
        docs = self.interactions.fresh_of_user(user_id)
        with self._lock:
            # Erased while this read ran: events from before the erasure are gone.
            erased = self._erased.get(erasure_key(user_id)) if self._erased else None
            rows = self._events.pop(user_id, [])
            have = {r[1] for r in rows}
            for doc in docs:
                event_id, ingested = str(doc["_id"]), doc.get("ingested_at") or started
                if (event_id in have or (self._cutoff is not None and ingested <= self._cutoff)
                        or (erased is not None and ingested <= erased)):
                    continue
                rows.append((ingested, event_id, _record(doc)))
                have.add(event_id)
            rows.sort(key=lambda r: (r[0], r[1]))
            del rows[: max(0, len(rows) - MAX_EVENTS_PER_USER)]
            self._partial.discard(user_id)
            if rows:
                self._events[user_id] = rows
                self._ids.update(r[1] for r in rows)
                self._evict()
            else:
                self._clean[user_id] = None
                if len(self._clean) > self.max_users:
                    self._clean.popitem(last=False)
            return [r[2] for r in rows]

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
        if self._spilled_until is not None and cutoff >= self._spilled_until:
            # Everything evicted is covered by the served version now.
            self._spilled.clear()
            self._spilled_until = None
            self._partial.clear()
            self._clean.clear()

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
        for user in [u for u in list(self._events) if erasure_key(u) == key]:
            for row in self._events.pop(user):
                self._ids.discard(row[1])
            self._partial.discard(user)
        for user in [u for u in list(self._known) if erasure_key(u) == key]:
            del self._known[user]
        alive = [(ref, ref()) for ref in self._erase_listeners]
        self._erase_listeners = [ref for ref, method in alive if method is not None]
        for _, method in alive:
            if method is not None:
                method(key)

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
        """Read what other processes wrote since the last poll; returns new events.

        Erasures first, then the events in batches of ``LOAD_BATCH``, each applied under
        the lock on its own: requests are served between batches, and only one batch is
        held at a time (the first poll reads the whole buffer)."""
        started = datetime.now(UTC)
        with self._lock:
            reload = self._reload_asked
            whole = reload != self._reload_done
        since = self._fresh_cursor - OVERLAP if self._fresh_cursor and not whole else None
        erasures = self.users.erasures_since(
            self._erasure_cursor - OVERLAP if self._erasure_cursor else None)
        with self._lock:
            for tomb in erasures:
                self._erase(str(tomb["_id"]), tomb["erased_at"])
        added = 0
        for batch in self.interactions.fresh_since(since, LOAD_BATCH):
            with self._lock:
                added += sum(self._add(doc) for doc in batch)
        with self._lock:
            self._reload_done = max(self._reload_done, reload)
        self._fresh_cursor = started
        self._erasure_cursor = started
        return added


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
