"""Experiments for administrators (create, change, stop, delete) and their reports.

A definition is checked as a whole before it is stored:

- 422: fewer than two arms, duplicate arm names, shares not summing to 1 (the holdout
  included), an arm naming both a version and an algorithm, an unknown algorithm, a
  control that is not an arm, an empty traffic slice, a stop before the start;
- 404: a model version that does not exist, an algorithm without a trained version;
- 400: a version that exists but cannot be served (rejected by its checks), a stop
  time already past (the experiment could never run);
- 409: another experiment that could hold the same user on the same endpoint at the
  same time (overlapping traffic slice and time), or a change to the arms, traffic,
  metric or start of an experiment that has started (that would mix two experiments
  in one report: stop it and create another).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database

from fastinsight.config import Settings
from fastinsight.errors import BadRequest, Conflict, NotFoundError, ValidationFailed
from fastinsight.recsys.registry import algorithms
from fastinsight.schemas.experiments import ExperimentIn, ExperimentOut, ExperimentPatch, ReportOut
from fastinsight.services.experiments.definition import Arm, Experiment
from fastinsight.services.experiments.report import build_reports
from fastinsight.services.experiments.serving import ExperimentRuntime
from fastinsight.storage.mongo.client import Document
from fastinsight.storage.mongo.experiments import ExperimentRepository
from fastinsight.storage.mongo.impressions import ImpressionRepository
from fastinsight.storage.mongo.models import ModelVersionRepository

log = logging.getLogger(__name__)

SHARE_TOLERANCE = 1e-6
DEFAULT_HOLDOUT_ALGORITHM = "popularity"
ANYTIME_FIELDS = frozenset({"name", "description", "stop_at"})


class ExperimentService:
    def __init__(self, db: Database[Document], settings: Settings,
                 runtime: ExperimentRuntime | None = None) -> None:
        self.settings = settings
        self.repo = ExperimentRepository(db)
        self.models = ModelVersionRepository(db)
        self.impressions = ImpressionRepository(db)
        self.runtime = runtime
        # Called before a report is computed (this process writes its queued impressions).
        self.before_report: list[Callable[[], object]] = []
        self._reports: dict[str, tuple[float, ReportOut]] = {}
        self._write_lock = threading.Lock()
        self._report_lock = threading.Lock()

    # ---- reading ------------------------------------------------------------------------
    def get(self, experiment_id: str) -> Experiment:
        doc = self.repo.get(experiment_id)
        if doc is None:
            raise NotFoundError(f"experiment {experiment_id!r} does not exist")
        return Experiment.from_doc(doc)

    def out(self, exp: Experiment, now: datetime | None = None) -> ExperimentOut:
        out = exp.to_out(now or datetime.now(UTC))
        if self.runtime is not None:
            out.serving = self.runtime.status.get(exp.id)
        return out

    def list_all(self) -> list[ExperimentOut]:
        now = datetime.now(UTC)
        return [self.out(Experiment.from_doc(d), now) for d in self.repo.list()]

    # ---- writing ------------------------------------------------------------------------
    def create(self, body: ExperimentIn) -> ExperimentOut:
        now = datetime.now(UTC)
        experiment_id = f"exp-{uuid.uuid4().hex[:12]}"
        with self._write_lock:
            exp = self._definition(body, experiment_id, now, created_at=now)
            self._check_overlap(exp)
            self.repo.insert(exp.to_doc())
        log.info("experiment %s created: %s", exp.id, exp.name)
        return self._changed(exp)

    def update(self, experiment_id: str, patch: ExperimentPatch) -> ExperimentOut:
        now = datetime.now(UTC)
        changes = patch.model_dump(exclude_unset=True)
        with self._write_lock:
            current = self.get(experiment_id)
            status = current.status(now)
            if status == "stopped" and "stop_at" in changes:
                raise Conflict(f"experiment {experiment_id} has stopped; create a new one to run again")
            if set(changes) - ANYTIME_FIELDS and status != "scheduled":
                raise Conflict(
                    f"experiment {experiment_id} has started: only name, description and stop_at may "
                    "change (stop it and create a new one to change arms, traffic or metric)")
            merged = {**_as_input(current), **changes}
            exp = self._definition(ExperimentIn.model_validate(merged), experiment_id, now,
                                   created_at=current.created_at, check_stop="stop_at" in changes,
                                   stopped_at=current.stopped_at)
            self._check_overlap(exp)
            self.repo.update(experiment_id, {k: v for k, v in exp.to_doc().items() if k != "_id"})
        return self._changed(exp)

    def stop(self, experiment_id: str) -> ExperimentOut:
        now = datetime.now(UTC)
        exp = self.get(experiment_id)
        if exp.status(now) == "stopped":
            raise Conflict(f"experiment {experiment_id} has already stopped")
        self.repo.update(experiment_id, {"stopped_at": now, "updated_at": now})
        return self._changed(self.get(experiment_id))

    def delete(self, experiment_id: str) -> None:
        exp = self.get(experiment_id)
        if exp.status(datetime.now(UTC)) == "running":
            raise Conflict(f"experiment {experiment_id} is running: stop it first")
        self.repo.delete(experiment_id)
        self._reports.pop(experiment_id, None)
        if self.runtime is not None:
            self.runtime.refresh()

    def _changed(self, exp: Experiment) -> ExperimentOut:
        """Apply a change to this process's serving now (other replicas poll)."""
        self._reports.pop(exp.id, None)
        if self.runtime is not None:
            self.runtime.refresh()
        return self.out(exp)

    # ---- reports --------------------------------------------------------------------------
    def report(self, experiment_id: str, fresh: bool = False) -> ReportOut:
        """The experiment's report (up to ``report_cache_seconds`` old unless ``fresh``);
        experiments whose time ranges lie within its own are reported from the same pass
        over the data and cached with it."""
        asked = time.monotonic()
        cached = self._reports.get(experiment_id)
        if not fresh and cached is not None and asked - cached[0] < self.settings.report_cache_seconds:
            return cached[1]
        with self._report_lock:
            cached = self._reports.get(experiment_id)
            if cached is not None and (cached[0] >= asked or (
                    not fresh and time.monotonic() - cached[0] < self.settings.report_cache_seconds)):
                return cached[1]  # computed while this request waited for the lock
            wanted = self.get(experiment_id)
            for flush in self.before_report:
                flush()
            now = datetime.now(UTC)
            together = [wanted] + [e for e in (Experiment.from_doc(d) for d in self.repo.list(limit=1000))
                                   if e.id != wanted.id and _overlapping_data(wanted, e, now)]
            weights = self.settings.interaction_weights
            reports = build_reports(together, self.impressions,
                                    creditable=frozenset(t for t, w in weights.items() if w > 0),
                                    conversion_types=frozenset(self.settings.conversion_types), now=now)
            stamp = time.monotonic()
            for exp_id, report in reports.items():
                self._reports[exp_id] = (stamp, report)
            return reports[experiment_id]

    # ---- validation --------------------------------------------------------------------
    def _definition(self, body: ExperimentIn, experiment_id: str, now: datetime, *, created_at: datetime,
                    check_stop: bool = True, stopped_at: datetime | None = None) -> Experiment:
        arms = [Arm(name=v.name, share=v.share, model_version=v.model_version, algorithm=v.algorithm,
                    rules=v.rules.model_dump() if v.rules is not None else None) for v in body.variants]
        if body.holdout is not None:
            h = body.holdout
            algorithm = h.algorithm or (None if h.model_version else DEFAULT_HOLDOUT_ALGORITHM)
            arms.append(Arm(name=h.name, share=h.share, model_version=h.model_version, algorithm=algorithm,
                            rules=h.rules.model_dump() if h.rules is not None else None, holdout=True))
        self._check_arms(arms)
        control = body.control or (body.holdout.name if body.holdout is not None else arms[0].name)
        if control not in {a.name for a in arms}:
            raise ValidationFailed.field("control", f"{control!r} is not one of the arms")
        low, high = body.traffic
        if not low < high:
            raise ValidationFailed.field("traffic", "must be [from, to) with from < to")
        start = body.start_at or now
        if body.stop_at is not None and body.stop_at <= start:
            raise ValidationFailed.field("stop_at", "must be after start_at")
        if body.stop_at is not None and body.stop_at <= now and check_stop:
            raise BadRequest("stop_at is in the past: this experiment could never run",
                             details=[{"field": "stop_at", "message": "in the past"}])
        window = body.attribution_window_seconds or self.settings.attribution_window_seconds
        return Experiment(
            id=experiment_id, name=body.name, description=body.description,
            salt=body.salt or experiment_id, arms=tuple(arms), control=control, traffic=(low, high),
            endpoints=tuple(dict.fromkeys(body.endpoints)), start_at=start, stop_at=body.stop_at,
            stopped_at=stopped_at, primary_metric=body.primary_metric,
            attribution_window_seconds=window, min_detectable_lift=body.min_detectable_lift,
            created_at=created_at, updated_at=now,
        )

    def _check_arms(self, arms: list[Arm]) -> None:
        if len(arms) < 2:
            raise ValidationFailed.field("variants", "an experiment needs at least two arms "
                                         "(two variants, or a variant and a holdout)")
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ValidationFailed.field("variants", "arm names must be unique (the holdout included)")
        total = sum(a.share for a in arms)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValidationFailed.field("variants", f"shares sum to {total:g}; they must sum to 1 "
                                         "(the holdout included)")
        known = set(algorithms())
        for n, arm in enumerate(arms):
            where = "holdout" if arm.holdout else f"variants.{n}"
            if arm.model_version and arm.algorithm:
                raise ValidationFailed.field(where, "name a model_version or an algorithm, not both")
            if arm.algorithm and arm.algorithm not in known:
                raise ValidationFailed.field(f"{where}.algorithm",
                                             f"unknown algorithm {arm.algorithm!r}; "
                                             f"choose one of {', '.join(sorted(known))}")
            if arm.model_version:
                doc = self.models.get(arm.model_version)
                if doc is None:
                    raise NotFoundError(
                        f"model version {arm.model_version!r} does not exist",
                        details=[{"field": f"{where}.model_version", "message": "not found"}])
                if doc.get("status", "ready") != "ready":
                    raise BadRequest(
                        f"model version {arm.model_version!r} cannot be served "
                        f"(status {doc.get('status')!r})",
                        details=[{"field": f"{where}.model_version", "message": "not servable"}])
            elif arm.algorithm and self.models.newest_ready(arm.algorithm) is None:
                raise NotFoundError(f"no trained version of {arm.algorithm!r}: train one first",
                                    details=[{"field": f"{where}.algorithm", "message": "no version"}])

    def _check_overlap(self, exp: Experiment) -> None:
        for doc in self.repo.list(limit=10_000):
            other = Experiment.from_doc(doc)
            if other.id != exp.id and exp.overlaps(other):
                raise Conflict(
                    f"overlaps experiment {other.id} ({other.name!r}) on the same traffic: same endpoint, "
                    f"overlapping time and traffic slice {list(other.traffic)}; give them disjoint "
                    "traffic slices or times",
                    details=[{"field": "traffic", "message": f"overlaps {other.id}"}])


def _overlapping_data(one: Experiment, other: Experiment, now: datetime) -> bool:
    """Whether the data a report of ``other`` reads lies within that of ``one`` (its lists
    and the attribution window after them), so one pass serves both."""
    def span(e: Experiment) -> tuple[datetime, datetime]:
        end = min(now, e.end() or now)
        return e.start_at, end + timedelta(seconds=e.attribution_window_seconds)

    (a0, a1), (b0, b1) = span(one), span(other)
    return a0 <= b0 and b1 <= max(a1, now) and other.start_at <= now


def _as_input(exp: Experiment) -> dict[str, Any]:
    """A stored experiment as the fields of :class:`ExperimentIn` (for a patch)."""
    variants = [a for a in exp.arms if not a.holdout]
    holdout = next((a for a in exp.arms if a.holdout), None)

    def arm(a: Arm) -> dict[str, Any]:
        return {"name": a.name, "share": a.share, "model_version": a.model_version,
                "algorithm": a.algorithm, "rules": a.rules}

    return {"name": exp.name, "description": exp.description, "variants": [arm(a) for a in variants],
            "holdout": arm(holdout) if holdout is not None else None, "control": exp.control,
            "traffic": list(exp.traffic), "endpoints": list(exp.endpoints), "salt": exp.salt,
            "start_at": exp.start_at, "stop_at": exp.stop_at, "primary_metric": exp.primary_metric,
            "attribution_window_seconds": exp.attribution_window_seconds,
            "min_detectable_lift": exp.min_detectable_lift}
