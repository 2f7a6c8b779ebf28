"""An experiment as stored (one document) and read by serving and reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast, get_args

from fastinsight.schemas.experiments import ArmOut, ExperimentOut, Metric, RuleSet, Status
from fastinsight.services.experiments.assignment import ArmPicker, bucket, traffic_bucket
from fastinsight.storage.mongo.client import Document


def metric(value: object) -> Metric:
    if value not in get_args(Metric):
        raise ValueError(f"unknown metric {value!r}")
    return cast(Metric, value)


@dataclass(frozen=True)
class Arm:
    name: str
    share: float
    model_version: str | None = None
    algorithm: str | None = None
    rules: dict[str, Any] | None = None
    holdout: bool = False

    @classmethod
    def from_doc(cls, doc: Document) -> Arm:
        return cls(name=str(doc["name"]), share=float(doc["share"]), model_version=doc.get("model_version"),
                   algorithm=doc.get("algorithm"), rules=doc.get("rules"), holdout=bool(doc.get("holdout")))

    def to_doc(self) -> Document:
        return {"name": self.name, "share": self.share, "model_version": self.model_version,
                "algorithm": self.algorithm, "rules": self.rules, "holdout": self.holdout}


@dataclass(frozen=True)
class Experiment:
    id: str
    name: str
    description: str
    salt: str
    arms: tuple[Arm, ...]
    control: str
    traffic: tuple[float, float]
    endpoints: tuple[str, ...]
    start_at: datetime
    stop_at: datetime | None
    stopped_at: datetime | None
    primary_metric: Metric
    attribution_window_seconds: float
    min_detectable_lift: float
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_doc(cls, doc: Document) -> Experiment:
        return cls(
            id=str(doc["_id"]), name=str(doc["name"]), description=str(doc.get("description", "")),
            salt=str(doc["salt"]), arms=tuple(Arm.from_doc(a) for a in doc["arms"]),
            control=str(doc["control"]), traffic=(float(doc["traffic"][0]), float(doc["traffic"][1])),
            endpoints=tuple(doc["endpoints"]), start_at=doc["start_at"], stop_at=doc.get("stop_at"),
            stopped_at=doc.get("stopped_at"), primary_metric=metric(doc["primary_metric"]),
            attribution_window_seconds=float(doc["attribution_window_seconds"]),
            min_detectable_lift=float(doc["min_detectable_lift"]),
            created_at=doc["created_at"], updated_at=doc["updated_at"],
        )

    def to_doc(self) -> Document:
        return {
            "_id": self.id, "name": self.name, "description": self.description, "salt": self.salt,
            "arms": [a.to_doc() for a in self.arms], "control": self.control,
            "traffic": list(self.traffic), "endpoints": list(self.endpoints), "start_at": self.start_at,
            "stop_at": self.stop_at, "stopped_at": self.stopped_at, "primary_metric": self.primary_metric,
            "attribution_window_seconds": self.attribution_window_seconds,
            "min_detectable_lift": self.min_detectable_lift, "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    # ---- time -------------------------------------------------------------------------
    def end(self) -> datetime | None:
        """When it stops (or stopped): the earlier of the planned and the actual stop."""
        ends = [t for t in (self.stop_at, self.stopped_at) if t is not None]
        return min(ends) if ends else None

    def status(self, now: datetime) -> Status:
        """The end comes first: an experiment stopped before its start never runs, and is
        stopped (not editable, not stoppable again) like any other."""
        end = self.end()
        if end is not None and now >= end:
            return "stopped"
        return "scheduled" if now < self.start_at else "running"

    def overlaps(self, other: Experiment) -> bool:
        """Could one user be in both at the same time on the same endpoint?"""
        mine, theirs = self.end(), other.end()
        in_time = (theirs is None or self.start_at < theirs) and (mine is None or other.start_at < mine)
        in_traffic = self.traffic[0] < other.traffic[1] and other.traffic[0] < self.traffic[1]
        return in_time and in_traffic and bool(set(self.endpoints) & set(other.endpoints))

    # ---- assignment ---------------------------------------------------------------------
    def picker(self) -> ArmPicker:
        return ArmPicker([a.share for a in self.arms])

    def covers(self, user_id: str) -> bool:
        low, high = self.traffic
        return low <= traffic_bucket(user_id) < high

    def arm_of(self, user_id: str, picker: ArmPicker | None = None) -> Arm:
        return self.arms[(picker or self.picker()).pick(bucket(self.salt, user_id))]

    def to_out(self, now: datetime) -> ExperimentOut:
        return ExperimentOut(
            id=self.id, name=self.name, description=self.description, status=self.status(now),
            variants=[ArmOut(name=a.name, model_version=a.model_version, algorithm=a.algorithm,
                             rules=RuleSet.model_validate(a.rules) if a.rules is not None else None,
                             share=a.share, holdout=a.holdout, control=a.name == self.control)
                      for a in self.arms],
            control=self.control, traffic=list(self.traffic), endpoints=list(self.endpoints),
            salt=self.salt, start_at=self.start_at, stop_at=self.stop_at, stopped_at=self.stopped_at,
            primary_metric=self.primary_metric,
            attribution_window_seconds=self.attribution_window_seconds,
            min_detectable_lift=self.min_detectable_lift, created_at=self.created_at,
            updated_at=self.updated_at,
        )
