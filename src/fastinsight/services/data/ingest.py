"""Validated ingestion: check each row, transform valid rows to documents, write in batches.

Every valid row is stored even when others are rejected; rejected rows come back with
their row number and one entry per failing field. Writes are idempotent: users and items
are keyed by their ids, interactions by a deterministic key (see ``interaction_key``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.errors import ValidationFailed
from fastinsight.schemas.core import (
    FieldError,
    ImportReport,
    InteractionIn,
    ItemIn,
    RejectedRow,
    UserIn,
)
from fastinsight.services.data.parsing import ParsedRow, RowError
from fastinsight.services.tenancy.quotas import Admit, no_quota
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.interactions import InteractionRepository, interaction_document
from fastinsight.storage.mongo.items import ItemRepository
from fastinsight.storage.mongo.users import UserRepository

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
Progress = Callable[[int], None]


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(row)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(FieldError(field=loc, message=message))
    return out


def _batches(rows: Iterable[ParsedRow], size: int, report: ImportReport) -> Iterator[list[ParsedRow]]:
    """``rows`` in lists of ``size``. A body the reader cannot go on with (not UTF-8, not
    one JSON array, an oversized CSV field) stops the import with its 422, which then also
    says what the batches before it stored: they stay, and sending the corrected file
    again stores nothing twice (ids are deterministic)."""
    it = iter(rows)
    while True:
        try:
            batch = list(islice(it, size))
        except ValidationFailed as exc:
            stored = report.inserted + report.updated
            note = (f"{stored} rows before it were stored, {report.unchanged + report.duplicates} "
                    "were stored already; nothing after it was read. Send the corrected file "
                    "again: what is stored is not stored twice")
            raise ValidationFailed(f"{exc.message} ({note})", details=[
                *exc.details, {"field": "(import)", "message": note}]) from exc
        if not batch:
            return
        yield batch


def _validate(
    batch: list[ParsedRow], model: type[M], rejected: list[RejectedRow]
) -> list[tuple[int, M]]:
    valid: list[tuple[int, M]] = []
    for number, row in batch:
        if isinstance(row, RowError):
            rejected.append(
                RejectedRow(row=number, errors=[FieldError(field=row.field, message=row.message)])
            )
            continue
        try:
            valid.append((number, model.model_validate(row)))
        except ValidationError as exc:
            rejected.append(RejectedRow(row=number, errors=_field_errors(exc)))
    return valid


def _same_content(stored: Document, fresh: Document, fields: Iterable[str]) -> bool:
    return all(stored.get(f) == fresh.get(f) for f in fields)


class KnownIds:
    """Ids confirmed to exist, so a long import looks each one up once at most.

    Few unknown ids are looked up one by one (``_id`` reads); many at once load every id
    of the collection in one pass instead, which is far cheaper than thousands of reads.
    """

    BULK_THRESHOLD = 50

    def __init__(
        self,
        lookup: Callable[[Iterable[str]], dict[str, Document]],
        load_all: Callable[[], set[str]],
    ) -> None:
        self._lookup = lookup
        self._load_all = load_all
        self._known: set[str] = set()
        self._loaded_all = False

    def missing(self, ids: Iterable[str]) -> set[str]:
        unknown = {i for i in ids if i not in self._known}
        if unknown and len(unknown) > self.BULK_THRESHOLD and not self._loaded_all:
            self._known.update(self._load_all())
            self._loaded_all = True
            unknown = {i for i in unknown if i not in self._known}
        if unknown:
            self._known.update(self._lookup(unknown))
        return {i for i in unknown if i not in self._known}

    def add(self, ids: Iterable[str]) -> None:
        self._known.update(ids)


class IngestService:
    def __init__(self, db: Database[Document], settings: Settings, admit: Admit = no_quota) -> None:
        self.settings = settings
        self.admit = admit  # the tenant's row quotas (services.tenancy.quotas)
        self.users = UserRepository(db)
        self.items = ItemRepository(db)
        self.interactions = InteractionRepository(db)
        # Called with the real-time events just stored (serving applies them at once).
        self.fresh_listeners: list[Callable[[list[Document]], None]] = []

    # ---- users and items --------------------------------------------------------------
    def import_users(self, rows: Iterable[ParsedRow], progress: Progress | None = None) -> ImportReport:
        return self._import_entities(
            "users", rows, UserIn, self.users.insert_many_new, self.users.get_many, self.users.replace,
            lambda m, now: self.users.document(m.user_id, m.attributes, now),
            ("attributes",), progress,
        )

    def import_items(self, rows: Iterable[ParsedRow], progress: Progress | None = None) -> ImportReport:
        return self._import_entities(
            "items", rows, ItemIn, self.items.insert_many_new, self.items.get_many, self.items.replace,
            lambda m, now: self.items.document(m.model_dump(), now),
            ("title", "description", "categories", "tags", "attributes", "hidden",
             "published_at"),
            progress,
        )

    def _import_entities(
        self,
        kind: str,
        rows: Iterable[ParsedRow],
        model: type[M],
        insert: Callable[[list[Document]], tuple[int, list[int]]],
        get_many: Callable[[Iterable[str]], dict[str, Document]],
        replace: Callable[[Document], None],
        to_doc: Callable[[Any, datetime], Document],
        content_fields: tuple[str, ...],
        progress: Progress | None,
    ) -> ImportReport:
        report = ImportReport()
        for batch in _batches(rows, self.settings.import_batch_size, report):
            rejected: list[RejectedRow] = []
            valid = _validate(batch, model, rejected)
            report.add_rejected(rejected)
            now = datetime.now(UTC)
            # The last row wins when a file names the same id twice.
            latest: dict[str, Document] = {}
            for _, m in valid:
                doc = to_doc(m, now)
                latest[doc["_id"]] = doc
            docs = list(latest.values())
            self.admit(kind, list(latest))
            inserted, dup_positions = insert(docs)
            report.inserted += inserted
            existing_docs = [docs[p] for p in dup_positions]
            stored = get_many(d["_id"] for d in existing_docs)
            for doc in existing_docs:
                current = stored.get(doc["_id"])
                if current is not None and _same_content(current, doc, content_fields):
                    report.unchanged += 1
                    continue
                if current is not None:
                    doc["created_at"] = current.get("created_at", now)
                replace(doc)
                report.updated += 1
            report.unchanged += len(valid) - len(docs)
            if progress:
                progress(len(batch))
        return report

    # ---- interactions ---------------------------------------------------------------
    def import_interactions(
        self,
        rows: Iterable[ParsedRow],
        progress: Progress | None = None,
        realtime: bool = False,
    ) -> ImportReport:
        """Store valid interactions; ``realtime`` also feeds the serving overlay."""
        report = ImportReport()
        known_items = KnownIds(self.items.get_many, self.items.all_ids)
        created_users: set[str] = set()
        for batch in _batches(rows, self.settings.import_batch_size, report):
            rejected: list[RejectedRow] = []
            valid = _validate(batch, InteractionIn, rejected)
            valid = self._check_interactions(valid, known_items, rejected)
            report.add_rejected(rejected)
            docs = [self._interaction_doc(m, None if realtime else n) for n, m in valid]
            # Bare users for unknown ids: one unordered insert; existing ones are skipped.
            new_users = {d["user_id"] for d in docs} - created_users
            self.admit("interactions", [d["_id"] for d in docs])
            self.admit("users", sorted(new_users))
            if new_users:
                report.users_created += self.users.ensure_exist(new_users)
                created_users.update(new_users)
            outcome = self.interactions.insert_many(docs)
            report.inserted += outcome.inserted
            report.duplicates += len(outcome.duplicate_positions)
            if realtime and docs:
                dups = set(outcome.duplicate_positions)
                stamp = datetime.now(UTC)
                fresh = [{**d, "ingested_at": stamp} for i, d in enumerate(docs) if i not in dups]
                self.interactions.insert_fresh(fresh)
                for listener in self.fresh_listeners:
                    listener(fresh)
            if progress:
                progress(len(batch))
        return report

    def _check_interactions(
        self,
        valid: list[tuple[int, InteractionIn]],
        known_items: KnownIds,
        rejected: list[RejectedRow],
    ) -> list[tuple[int, InteractionIn]]:
        types = self.settings.interaction_types
        allowed = ", ".join(sorted(types))
        unknown_items = known_items.missing({m.item_id for _, m in valid})
        if unknown_items and not self.settings.reject_unknown_items:
            self.admit("items", sorted(unknown_items))
            now = datetime.now(UTC)
            self.items.insert_many_new(
                [self.items.document(ItemIn(item_id=i).model_dump(), now) for i in unknown_items]
            )
            known_items.add(unknown_items)
            unknown_items = set()
        kept: list[tuple[int, InteractionIn]] = []
        for number, m in valid:
            errors: list[FieldError] = []
            if m.type not in types:
                message = f"unknown type {m.type!r}; allowed: {allowed}"
                errors.append(FieldError(field="type", message=message))
            elif m.type == "rating" and m.value is None:
                errors.append(FieldError(field="value", message="a rating needs a numeric value"))
            if m.item_id in unknown_items:
                errors.append(FieldError(
                    field="item_id",
                    message=f"unknown item {m.item_id!r}; create the item first",
                ))
            if errors:
                rejected.append(RejectedRow(row=number, errors=errors))
            else:
                kept.append((number, m))
        return kept

    @staticmethod
    def _interaction_doc(m: InteractionIn, file_row: int | None) -> Document:
        """A live event without a time is stamped on arrival (retries should send
        ``event_id``); a file row without time or event id is keyed by its row number."""
        untimed = m.timestamp is None and not m.event_id
        ts = m.timestamp or datetime.now(UTC)
        return interaction_document(m.user_id, m.item_id, m.type, m.value, ts, m.event_id,
                                    m.recommendation_id, file_row if untimed else None)
