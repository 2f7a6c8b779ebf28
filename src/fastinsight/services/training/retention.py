"""Which model versions are kept, and the deletion of the others.

One rule, applied after every training run and by ``fastinsight cleanup``:
``model_keep_versions`` (N, at least 2) is how many versions stay stored, the active one
included. Places are filled in this order until N are taken:

1. the active version (never deleted, however old);
2. the version that was active before it: what a roll-back switches to;
3. the newest other versions that can be activated;
4. the newest rejected versions (they failed their sanity check and can never be
   activated, so they only take places no activatable version needs).

Versions that a running experiment serves (an arm pinned to them) are kept as well,
whatever N: deleting one would take an arm out of service mid-experiment.

Everything else is deleted with its artefact files and what insights derived from it.

The real-time buffer (``fresh_interactions``) follows the same rule: a version serves the
events posted after its snapshot from that buffer, so an event may only go once every
version that can still be served (the active one and every stored, not rejected one:
after pruning, exactly the versions the rule keeps) was trained on it.
``trim_realtime_buffer`` applies that after training, activation (roll-back included)
and pruning.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.database import Database

from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.experiments import ExperimentRepository
from fastinsight.storage.mongo.insights import forget_model_version
from fastinsight.storage.mongo.interactions import InteractionRepository
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)

MIN_KEEP = 2  # the active version and one to roll back to
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StoredVersion:
    """What the rule needs to know about one stored version."""

    version: str
    created_at: datetime
    rejected: bool = False
    last_activated_at: datetime | None = None

    @classmethod
    def from_doc(cls, doc: Document) -> StoredVersion:
        return cls(
            version=str(doc["_id"]), created_at=_aware(doc.get("created_at")),
            rejected=doc.get("status") == "rejected",
            last_activated_at=_aware(doc["last_activated_at"]) if doc.get("last_activated_at") else None,
        )


@dataclass(frozen=True)
class RetentionPlan:
    keep: list[str]  # in the order the places were given (active first)
    delete: list[str]  # newest first


def plan_retention(
    versions: Iterable[StoredVersion], active: str | None, keep: int,
    in_use: frozenset[str] = frozenset(),
) -> RetentionPlan:
    """Apply the rule (see the module docstring) to ``versions``; no side effects.
    ``in_use``: versions running experiments serve, kept beyond the N places."""
    if keep < MIN_KEEP:
        raise ValueError(f"keep must be at least {MIN_KEEP} (the active version and one to roll back to)")
    newest_first = sorted(versions, key=lambda v: (v.created_at, v.version), reverse=True)
    kept: list[str] = [v.version for v in newest_first if v.version == active]
    pinned = [v.version for v in newest_first if v.version in in_use and v.version != active]
    others = [v for v in newest_first if v.version != active and v.version not in in_use]
    previous = max((v for v in others if v.last_activated_at is not None and not v.rejected),
                   key=lambda v: v.last_activated_at or _NEVER, default=None)
    ranked = ([previous] if previous else []) + [v for v in others if not v.rejected and v is not previous]
    ranked += [v for v in others if v.rejected]
    kept += [v.version for v in ranked[: max(0, keep - len(kept))]]
    kept += pinned
    chosen = set(kept)
    return RetentionPlan(keep=kept, delete=[v.version for v in newest_first if v.version not in chosen])


def plan_for(db: Database[Document], keep: int) -> RetentionPlan:
    """The rule applied to what is stored now."""
    repo = ModelVersionRepository(db)
    stored = [StoredVersion.from_doc(d) for d in repo.list(limit=None)]
    in_use = frozenset(ExperimentRepository(db).versions_in_use())
    return plan_retention(stored, repo.active_version(), keep, in_use)


def prune_versions(db: Database[Document], keep: int, *, dry_run: bool = False) -> RetentionPlan:
    """Delete the versions the rule does not keep: documents, artefact chunks, and the
    segments and coverage insights derived from them. Returns the plan that was applied."""
    plan = plan_for(db, keep)
    if dry_run:
        return plan
    repo = ModelVersionRepository(db)
    deleted: list[str] = []
    for version in plan.delete:
        # Someone may have switched to this version (a roll-back) since the plan was made.
        if repo.active_version() == version:
            log.warning("model version %s became active while pruning; kept", version)
            continue
        delete_version(db, version)
        deleted.append(version)
    if deleted:
        log.info("pruned model versions (keep=%d): %s", keep, ", ".join(deleted))
    kept = plan.keep + [v for v in plan.delete if v not in deleted]
    trim_realtime_buffer(db)
    return RetentionPlan(keep=kept, delete=deleted)


def servable_floor(db: Database[Document]) -> datetime | None:
    """The oldest snapshot among the versions that can still be served, or None when
    nothing may be trimmed (no version yet, or one without a recorded snapshot)."""
    repo = ModelVersionRepository(db)
    active = repo.active_version()
    floor: datetime | None = None
    for doc in repo.list(limit=None):
        if doc.get("status") == "rejected" and str(doc["_id"]) != active:
            continue  # can never be activated
        taken = (doc.get("snapshot") or {}).get("taken_at")
        if not isinstance(taken, datetime):
            log.warning("model version %s has no snapshot time: the real-time buffer is kept whole",
                        doc["_id"])
            return None
        taken = _aware(taken)
        floor = taken if floor is None else min(floor, taken)
    return floor


def trim_realtime_buffer(db: Database[Document]) -> int:
    """Drop the real-time events every servable version was trained on; returns how many."""
    floor = servable_floor(db)
    if floor is None:
        return 0
    dropped = InteractionRepository(db).truncate_fresh(floor)
    if dropped:
        log.info("real-time buffer: dropped %d events up to %s (oldest servable snapshot)",
                 dropped, floor.isoformat())
    return dropped


def delete_version(db: Database[Document], version: str) -> None:
    """One version and everything stored for it."""
    ModelVersionRepository(db).delete(version)  # the document and its artefact chunks
    forget_model_version(db, version)


def _aware(moment: object) -> datetime:
    if not isinstance(moment, datetime):
        return _NEVER
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
