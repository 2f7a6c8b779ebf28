"""An experiment's report: exposures, attributed clicks and conversions per arm, rates
with intervals, each arm against the control, a sample-ratio check and a verdict.

One pass over the stored data: the interactions in the experiment's time range (plus
the attribution window), the impressions of the same range (streamed; only those of
users with interactions are kept for the join) and the display reports. Memory is
about 200 bytes per impression of the experiment plus the kept impressions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from fastinsight.schemas.experiments import (
    ArmReport,
    Attribution,
    Comparison,
    HistoryPoint,
    Rate,
    ReportOut,
    Srm,
)
from fastinsight.services.experiments import statistics as st
from fastinsight.services.experiments.attribution import (
    Attributor,
    Credit,
    Event,
    impressions,
    join,
    load_displays,
    load_events,
)
from fastinsight.services.experiments.definition import Experiment
from fastinsight.services.experiments.verdict import METHOD, MIN_USERS, verdict
from fastinsight.storage.mongo.impressions import ImpressionRepository

HISTORY_POINTS = 20


@dataclass
class ArmData:
    """Per arm: exposures and credited outcomes as (user index, time) columns."""

    name: str
    users: dict[str, int] = field(default_factory=dict)
    exposure_user: list[int] = field(default_factory=list)
    exposure_ts: list[float] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)
    # rid -> (user, list served at, first credit at); conversions: user, served at, at, value
    clicked: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    conversions: list[tuple[int, float, float, float]] = field(default_factory=list)
    clicks: int = 0
    positions: Counter[int] = field(default_factory=Counter)

    def user(self, user_id: str) -> int:
        return self.users.setdefault(user_id, len(self.users))

    def sample(self, metric: str, served: float,
               credited: float = float("inf")) -> tuple[np.ndarray, np.ndarray]:
        """Per exposed user (numerator, denominator) of ``metric``, counting the lists
        served until ``served`` and what was credited to them until ``credited``."""
        n = len(self.users)
        ts = np.asarray(self.exposure_ts)
        exposures = np.bincount(np.asarray(self.exposure_user, dtype=np.int64)[ts <= served], minlength=n)
        exposed = exposures > 0
        if metric == "ctr":
            rows = [u for u, at, t in self.clicked.values() if at <= served and t <= credited]
            num = np.bincount(np.asarray(rows, dtype=np.int64), minlength=n).astype(float)
            return num[exposed], exposures[exposed].astype(float)
        conv = [(u, v) for u, at, t, v in self.conversions if at <= served and t <= credited]
        users = np.asarray([u for u, _ in conv], dtype=np.int64)
        if metric == "conversion":
            num = (np.bincount(users, minlength=n) > 0).astype(float)
        else:
            num = np.bincount(users, weights=np.asarray([v for _, v in conv], dtype=float), minlength=n)
        return num[exposed], np.ones(int(exposed.sum()))


def build_reports(experiments: list[Experiment], repo: ImpressionRepository, *, creditable: frozenset[str],
                  conversion_types: frozenset[str], now: datetime | None = None) -> dict[str, ReportOut]:
    """Reports of several experiments from one pass over the data of their time ranges
    (on a server that scans a collection per query, the pass is the whole cost)."""
    now = now or datetime.now(UTC)
    if not experiments:
        return {}
    ends = {e.id: min(now, e.end() or now) for e in experiments}
    windows = {e.id: e.attribution_window_seconds for e in experiments}
    start = min(min(e.start_at, ends[e.id]) for e in experiments)
    horizon = min(now, max(ends[e.id] + timedelta(seconds=windows[e.id]) for e in experiments))
    # The widest window finds every candidate: the latest list holding an item within a
    # narrower window is also the latest within the widest one.
    attributor = Attributor(max(windows.values()), load_events(repo, start, horizon, creditable))
    arms = {e.id: {a.name: ArmData(a.name) for a in e.arms} for e in experiments}
    rids: dict[str, str] = {}  # recommendation id -> experiment, for exposures counted
    for shown in join(attributor, impressions(repo, start, horizon, load_displays(repo, start, now))):
        mine = arms.get(shown.experiment_id or "")
        if mine is None or shown.variant not in mine or shown.user_id is None:
            continue
        if shown.exposed and shown.ts <= ends[shown.experiment_id or ""].timestamp():
            rids[shown.rid] = shown.experiment_id or ""
            arm = mine[shown.variant or ""]
            arm.exposure_user.append(arm.user(shown.user_id))
            arm.exposure_ts.append(shown.ts)
            arm.versions[shown.model_version] += 1
    result = attributor.run()
    rules: dict[str, Counter[str]] = {e.id: Counter() for e in experiments}
    late = []  # named lists found within the widest window but outside their own
    for credit in result.credits:
        owner = rids.get(credit.impression.rid)
        if owner is None:
            continue
        if credit.event.ts <= credit.impression.ts + windows[owner]:
            rules[owner][credit.rule] += 1
            _count(arms[owner], credit, conversion_types)
        elif credit.rule == "id":
            late.append(credit.event)
    reports = {}
    for exp in experiments:
        mine = arms[exp.id]
        unmatched = _unmatched(exp.id, [*result.unmatched, *late], rids,
                               set().union(*(a.users for a in mine.values())))
        reports[exp.id] = _summarise(exp, mine, now, ends[exp.id], Attribution(
            by_id=rules[exp.id]["id"], fallback=rules[exp.id]["fallback"], unmatched_id=unmatched))
    return reports


def _unmatched(experiment_id: str, events: list[Event], rids: dict[str, str], exposed: set[str]) -> int:
    """Events naming a list of this experiment, or an unknown list while exposed in it."""
    count = 0
    for event in events:
        owner = rids.get(event.recommendation_id or "")
        count += owner == experiment_id or (owner is None and event.user_id in exposed)
    return count


def _count(arms: dict[str, ArmData], credit: Credit, conversion_types: frozenset[str]) -> None:
    shown, event = credit.impression, credit.event
    arm = arms[shown.variant or ""]
    if not shown.exposed or shown.user_id not in arm.users:
        return
    user = arm.users[shown.user_id]
    at = max(event.ts, shown.ts)
    arm.clicks += 1
    arm.positions[credit.position] += 1
    first = arm.clicked.get(shown.rid)
    if first is None or at < first[2]:
        arm.clicked[shown.rid] = (user, shown.ts, at)
    if event.type in conversion_types:
        arm.conversions.append((user, shown.ts, at, event.value or 0.0))


def _summarise(exp: Experiment, arms: dict[str, ArmData], now: datetime, end: datetime,
               attribution: Attribution) -> ReportOut:
    until = end.timestamp()  # every exposure; credits are those found until now
    control = arms[exp.control]
    others = [a for a in exp.arms if a.name != exp.control]
    alpha = st.ALPHA / max(1, len(others))
    exposures = sum(len(a.exposure_ts) for a in arms.values())
    samples = {a.name: arms[a.name].sample(exp.primary_metric, until) for a in exp.arms}
    primary = {name: st.ratio_estimate(*sample) for name, sample in samples.items()}
    reports = []
    comparisons: dict[str, st.Comparison] = {}
    for spec in exp.arms:
        data = arms[spec.name]
        vs = None
        if spec.name != exp.control:
            comparisons[spec.name] = st.compare(primary[exp.control], primary[spec.name],
                                                min_lift=exp.min_detectable_lift, alpha=alpha,
                                                exposures=exposures,
                                                samples=(samples[exp.control], samples[spec.name]))
            vs = Comparison(**asdict(comparisons[spec.name]))
        reports.append(_arm_report(spec.name, spec.name == exp.control, spec.share, data, until, vs))
    users = {a.name: len(arms[a.name].users) for a in exp.arms}
    srm_p = st.srm_p_value(list(users.values()), [a.share for a in exp.arms])
    srm = Srm(p_value=srm_p, mismatch=srm_p is not None and srm_p < st.SRM_ALPHA, users=users,
              expected_shares={a.name: a.share for a in exp.arms})
    enough = all(n >= MIN_USERS for n in users.values())
    decision, text = verdict(exp, comparisons, primary, srm, enough, users)
    return ReportOut(
        experiment_id=exp.id, name=exp.name, status=exp.status(now), primary_metric=exp.primary_metric,
        computed_at=now, start=exp.start_at, end=end,
        attribution_window_seconds=exp.attribution_window_seconds,
        method=METHOD.format(comparisons=len(others), alpha=alpha, mde=exp.min_detectable_lift),
        arms=reports, attribution=attribution, srm=srm, decision=decision, verdict=text,
        history=_history(exp, arms, control, alpha),
    )


def _arm_report(name: str, is_control: bool, share: float, data: ArmData, until: float,
                vs: Comparison | None) -> ArmReport:
    ctr = st.ratio_estimate(*data.sample("ctr", until))
    conv = st.ratio_estimate(*data.sample("conversion", until))
    value = st.ratio_estimate(*data.sample("value_per_user", until))
    top = max(data.positions, default=0)
    return ArmReport(
        name=name, control=is_control, share=share, exposures=len(data.exposure_ts),
        users=len(data.users), clicked_exposures=len(data.clicked), clicks=data.clicks,
        conversions=len(data.conversions), value=round(sum(c[3] for c in data.conversions), 6),
        ctr=_rate(ctr, st.proportion_interval(ctr)),
        conversion_rate=_rate(conv, st.proportion_interval(conv)),
        value_per_user=_rate(value, st.mean_interval(value)),
        clicks_by_position=[data.positions.get(p, 0) for p in range(1, top + 1)],
        model_versions=dict(data.versions), vs_control=vs,
    )


def _rate(est: st.Estimate, interval: tuple[float | None, float | None]) -> Rate:
    return Rate(value=est.value, low=interval[0], high=interval[1])


def _history(exp: Experiment, arms: dict[str, ArmData], control: ArmData, alpha: float) -> list[HistoryPoint]:
    """The comparison on the first N exposures (with all that was credited to them so far),
    for up to ``HISTORY_POINTS`` values of N: how the estimate settles as data grows."""
    times = np.sort(np.concatenate([np.asarray(a.exposure_ts) for a in arms.values()] or [np.empty(0)]))
    if not len(times):
        return []
    marks = np.unique(np.linspace(0, len(times) - 1, num=min(HISTORY_POINTS, len(times))).astype(int))
    points = []
    for mark in marks.tolist():
        at = float(times[mark])
        base = st.ratio_estimate(*control.sample(exp.primary_metric, at))
        for spec in exp.arms:
            if spec.name == exp.control:
                continue
            est = st.ratio_estimate(*arms[spec.name].sample(exp.primary_metric, at))
            cmp = st.compare(base, est, min_lift=exp.min_detectable_lift, alpha=alpha)
            points.append(HistoryPoint(at=datetime.fromtimestamp(at, UTC), exposures=mark + 1, arm=spec.name,
                                       lift=cmp.lift, low=cmp.low, high=cmp.high, p_value=cmp.p_value))
    return points
