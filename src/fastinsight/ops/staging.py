"""A restore's staging database, and the switch of its collections into the live database.

A restore loads the archive into a database of its own (``fi_restore_<token>``) and
touches the live one only after every collection and every index there is complete and
counted. The switch then loads the archive into the live database again, by the same
code that filled the staging database (reading the archive again is about twice as
fast as reading the staged copy back on FerretDB). Before a live collection is first
written it is kept: with ``--drop`` renamed aside within the target
(``fi_restore_aside_<token>_<n>``, instant, indexes included), otherwise, or when it
cannot be renamed, copied to an undo database (``fi_restore_<token>_undo``). A failure
before the commit puts everything kept back, so the live database ends up as it was,
document for document and index for index; after the commit the kept copies go.

What FerretDB 1.24's ``renameCollection`` can do decided this: it renames only within
one database (no moving a staged collection into the target), has no ``dropTarget``,
and refuses any name with a dot (``ns.split(".")`` must give exactly two parts), such
as GridFS-style ``model_files.chunks``: those are copied. The same code runs on
MongoDB, where every rename works.

A journal document in the staging database records the target, the state and what was
kept where. A restore killed outright (SIGKILL, power loss) during the switch leaves the
journal and the kept copies behind: the next restore into the same database rolls the
switch back first (:func:`recover_interrupted`), unless the process that wrote the
journal is still alive. SIGTERM is turned into an exception for the duration of a
restore, so a stopped job rolls back at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Any, cast

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import IndexModel, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import OperationFailure, PyMongoError

from fastinsight.errors import Conflict
from fastinsight.ops.jobs.process import pid_alive

log = logging.getLogger(__name__)

Document = dict[str, Any]
STAGING_PREFIX = "fi_restore_"
UNDO_SUFFIX = "_undo"
# Live collections moved aside within the target while it is switched.
ASIDE_PREFIX = "fi_restore_aside_"
JOURNAL = "__fastinsight_restore__"
# Another host's restore counts as alive while its journal was touched this recently.
LEASE_SECONDS = 600.0
_HEARTBEAT_EVERY = 10.0
_INDEX_FIELDS_DROPPED = {"v", "ns", "key", "background"}
_RAW: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)


class RestoreInProgress(Conflict):
    code = "restore_in_progress"


class Terminated(BaseException):
    """SIGTERM arrived during a restore (a BaseException, like KeyboardInterrupt)."""


def index_models(metadata: Document) -> list[IndexModel]:
    """IndexModels for every non-``_id`` index in a mongodump metadata document."""
    models: list[IndexModel] = []
    for spec in metadata.get("indexes", []):
        if spec.get("name") == "_id_":
            continue
        keys = [(str(k), v) for k, v in dict(spec["key"]).items()]
        options = {k: v for k, v in spec.items() if k not in _INDEX_FIELDS_DROPPED}
        models.append(IndexModel(keys, **options))
    return models


def ensure_indexes(db: Database[Document], name: str, models: list[IndexModel]) -> list[str]:
    """Create the missing ones, one per call (FerretDB 1.24 drops the connection when one
    ``createIndexes`` names several that exist); returns the names, all checked present."""
    present = {ix["name"] for ix in db[name].list_indexes()}
    for model in models:
        if model.document["name"] not in present:
            db[name].create_indexes([model])
    wanted = [str(m.document["name"]) for m in models]
    missing = set(wanted) - {ix["name"] for ix in db[name].list_indexes()}
    if missing:
        raise RuntimeError(f"{db.name}.{name}: indexes {sorted(missing)} are missing after creation")
    return wanted


def copy_collection(
    src: Database[Document], dst: Database[Document], name: str, *,
    batch_size: int, beat: Callable[[], None],
) -> int:
    """Add to ``dst[name]`` (created with ``src[name]``'s options if absent) every raw
    document and every index of ``src[name]``; returns the number of documents copied."""
    info = next(iter(src.list_collections(filter={"name": name})), None)
    if name not in dst.list_collection_names():
        dst.create_collection(name, **dict((info or {}).get("options") or {}))
    target = dst[name]
    batch: list[RawBSONDocument] = []
    copied = 0
    raw = cast("Collection[RawBSONDocument]", src.get_collection(name, codec_options=_RAW))
    for doc in raw.find({}, batch_size=batch_size):
        batch.append(doc)
        if len(batch) >= batch_size:
            target.insert_many(batch, ordered=True)
            copied += len(batch)
            batch = []
            beat()
    if batch:
        target.insert_many(batch, ordered=True)
        copied += len(batch)
    ensure_indexes(dst, name, index_models({"indexes": list(src[name].list_indexes())}))
    return copied


def _owner() -> Document:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _alive(journal: Document) -> bool:
    owner = journal.get("owner") or {}
    if owner.get("host") == socket.gethostname():
        pid = int(owner.get("pid") or 0)
        return 0 < pid != os.getpid() and pid_alive(pid)
    return time.time() - float(journal.get("heartbeat") or 0.0) < LEASE_SECONDS


class Staging:
    """The staging and undo databases of one restore, and its journal."""

    def __init__(self, client: MongoClient[Document], target: str, *, token: str | None = None) -> None:
        self.client = client
        self.token = token or uuid.uuid4().hex[:12]
        self.db = client[f"{STAGING_PREFIX}{self.token}"]
        self.undo = client[f"{STAGING_PREFIX}{self.token}{UNDO_SUFFIX}"]
        self.target = client[target]
        self._beaten = 0.0
        # Set when a roll-back failed: the undo copy is then the only copy of the old data.
        self.kept_for_recovery = False

    # ---- journal -----------------------------------------------------------------
    def start(self, *, dry_run: bool) -> None:
        self.db[JOURNAL].insert_one({
            "_id": "journal", "target": self.target.name, "state": "loading", "dry_run": dry_run,
            "owner": _owner(), "started_at": datetime.now(UTC), "heartbeat": time.time(),
            "existed": [], "copied": [], "renamed": [], "dirty": [],
        })

    def journal(self) -> Document | None:
        return self.db[JOURNAL].find_one({"_id": "journal"})

    def _record(self, **fields: Any) -> None:
        self.db[JOURNAL].update_one({"_id": "journal"}, {"$set": {**fields, "heartbeat": time.time()}})

    def beat(self) -> None:
        if time.monotonic() - self._beaten >= _HEARTBEAT_EVERY:
            self._beaten = time.monotonic()
            self._record()

    def discard(self) -> None:
        """Drop the undo and staging databases (the journal goes last, with the staging
        one), unless a roll-back failed. Best effort: what is left, the next restore into
        the same database removes."""
        if self.kept_for_recovery:
            return
        try:
            self.client.drop_database(self.undo.name)
            self.client.drop_database(self.db.name)
        except PyMongoError:
            log.warning("could not drop %s; the next restore into %s removes it",
                        self.db.name, self.target.name, exc_info=True)

    # ---- switch ------------------------------------------------------------------
    def switch_in(
        self, archived: list[str], *, drop: bool, batch_size: int,
        replay: Callable[[Callable[[str], None]], None], check: Callable[[], None],
    ) -> None:
        """Write the archive's collections into the target; with ``drop`` the target's
        other collections go too. ``replay(prepare)`` loads the archive into the target
        and calls ``prepare(name)`` before it first writes a collection. Any failure
        before the commit (``check`` included) puts the target back and re-raises.

        With ``drop``, a live collection is moved aside by renaming it within the target
        (instant, its indexes go with it) and the aside copies are dropped at the commit.
        A name FerretDB cannot rename (one with a dot) is copied to the undo database
        instead, and so is every collection that keeps its documents without ``drop``.
        """
        live = {n for n in self.target.list_collection_names() if not n.startswith("system.")}
        touched = sorted(set(archived) | (live - set(archived) if drop else set()))
        existed = [n for n in touched if n in live]
        copied: list[str] = [] if drop else list(existed)
        renamed: dict[str, str] = {}
        self._record(state="saving", existed=existed)
        for name in copied:
            copy_collection(self.target, self.undo, name, batch_size=batch_size, beat=self.beat)
        self._record(state="switching", copied=copied)
        dirty: list[str] = []

        def prepare(name: str) -> None:
            dirty.append(name)
            self._record(dirty=dirty)
            if not drop:
                return
            if name in live:
                # Recorded before the rename: a roll-back checks whether it happened.
                renamed[name] = f"{ASIDE_PREFIX}{self.token}_{len(renamed)}"
                self._record(renamed=_as_list(renamed))
                if not self._rename(name, renamed[name]):
                    del renamed[name]
                    self._record(renamed=_as_list(renamed))
                    copy_collection(self.target, self.undo, name,
                                    batch_size=batch_size, beat=self.beat)
                    copied.append(name)
                    self._record(copied=copied)
            self.target.drop_collection(name)

        try:
            for name in touched:
                if name not in archived:
                    prepare(name)
            replay(prepare)
            check()
            self._record(state="committed")
        except BaseException:
            log.exception("restore into %s failed while switching; rolling back %d collection(s)",
                          self.target.name, len(dirty))
            self.roll_back({"dirty": dirty, "renamed": _as_list(renamed), "copied": copied,
                            "existed": existed})
            raise
        try:
            self.drop_asides(renamed)
        except PyMongoError:
            self.kept_for_recovery = True  # the journal says which; the next restore drops them
            log.warning("restore into %s: could not drop the old collections %s",
                        self.target.name, sorted(renamed.values()), exc_info=True)

    def _rename(self, name: str, to: str) -> bool:
        try:
            self.client.admin.command(
                {"renameCollection": f"{self.target.name}.{name}", "to": f"{self.target.name}.{to}"})
        except OperationFailure as exc:
            log.info("cannot rename %s.%s (%s); copying it aside instead",
                     self.target.name, name, exc.code)
            return False
        return True

    def drop_asides(self, renamed: dict[str, str]) -> None:
        for aside in renamed.values():
            self.target.drop_collection(aside)

    def roll_back(self, journal: Document) -> None:
        """Put every changed collection back as it was, following the journal."""
        dirty = list(journal.get("dirty") or [])
        renamed = {str(e["name"]): str(e["aside"]) for e in journal.get("renamed") or []}
        copied = set(journal.get("copied") or [])
        existed = set(journal.get("existed") or [])
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN) if _main_thread() else None
        try:
            present = set(self.target.list_collection_names())
            for name in reversed(dirty):
                if name in renamed:
                    if renamed[name] in present:  # else the rename never happened
                        self.target.drop_collection(name)
                        self._rename_back(renamed[name], name)
                elif name in copied:
                    self.target.drop_collection(name)
                    copy_collection(self.undo, self.target, name, batch_size=1000, beat=self.beat)
                elif name not in existed:
                    self.target.drop_collection(name)  # new: it was not there before
                # else: killed while copying it aside, before the live one was dropped
            self._record(state="rolled-back")
        except BaseException:
            self.kept_for_recovery = True
            log.exception(
                "rolling back the restore into %s failed: the previous data stays in %s and "
                "%s; the next restore into %s puts it back first",
                self.target.name, self.undo.name, sorted(renamed.values()), self.target.name)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        log.warning("restore into %s rolled back: %d collection(s) put back as they were",
                    self.target.name, len(dirty))

    def _rename_back(self, aside: str, name: str) -> None:
        self.client.admin.command(
            {"renameCollection": f"{self.target.name}.{aside}", "to": f"{self.target.name}.{name}"})


def recover_interrupted(client: MongoClient[Document], target: str, *, dry_run: bool = False) -> int:
    """Undo what restores into ``target`` that were killed mid-way left behind; returns
    how many were cleaned up. Raises :class:`RestoreInProgress` if one is still running."""
    cleaned = 0
    for name in client.list_database_names():
        if not name.startswith(STAGING_PREFIX) or name.endswith(UNDO_SUFFIX):
            continue
        staging = Staging(client, target, token=name[len(STAGING_PREFIX):])
        journal = staging.journal()
        if journal is None or journal.get("target") != target:
            continue
        if _alive(journal):
            raise RestoreInProgress(
                f"another restore into {target!r} is running (started "
                f"{journal.get('started_at')}, by {journal.get('owner')})")
        if dry_run:
            log.warning("an interrupted restore into %s left %s behind; a real restore cleans it",
                        target, name)
            continue
        if journal.get("state") == "switching":
            log.warning("an interrupted restore into %s was switching: rolling it back", target)
            staging.roll_back(journal)
        elif journal.get("state") == "committed":
            staging.drop_asides({str(e["name"]): str(e["aside"]) for e in journal.get("renamed") or []})
        staging.discard()
        cleaned += 1
    return cleaned


def _as_list(renamed: dict[str, str]) -> list[Document]:
    """Collection names may hold dots, which a field name may not: a list, not a map."""
    return [{"name": name, "aside": aside} for name, aside in renamed.items()]


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread only; elsewhere
    signals cannot be handled), so the clean-up and roll-back code runs."""
    if not _main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
