"""The report's method statement and its verdict in plain words."""

from __future__ import annotations

import math
from typing import Literal

from fastinsight.schemas.experiments import Srm
from fastinsight.services.experiments import statistics as st
from fastinsight.services.experiments.definition import Experiment

Decision = Literal["better", "worse", "no_difference_yet", "not_enough_data", "sample_ratio_mismatch"]
MIN_USERS = 30
LABELS = {"ctr": "click-through", "conversion": "conversion", "value_per_user": "value per user"}

METHOD = (
    "Per-user sums with delta-method variances (the user is the unit of randomisation, so "
    "repeated exposures of one user are not counted as independent). Each arm is compared with "
    "the control on the log of the ratio (relative lift), normal approximation. p-values and "
    "intervals are always valid: a mixture sequential probability ratio test (mSPRT; the effect "
    "mixed over centred normals with scales 1, 3, 9 and 27 x log(1 + {mde:g})), so the report may "
    "be read at any time without inflating false positives. Significance level {alpha:.3g} per "
    "comparison (0.05, Bonferroni "
    "over {comparisons}). probability_better: posterior with a flat prior. Sample ratio "
    "mismatch: chi-square test of users per arm against the shares at 0.001."
)


def _probability(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "over 99.9%" if value > 0.999 else f"{value:.1%}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _about(name: str, control: str, c: st.Comparison) -> str:
    return (f"{name} vs {control} {_pct(c.lift)} (always-valid 95% interval {_pct(c.low)} to "
            f"{_pct(c.high)}, p={c.p_value:.3g})")


def verdict(exp: Experiment, comparisons: dict[str, st.Comparison], primary: dict[str, st.Estimate],
            srm: Srm, enough: bool, users: dict[str, int]) -> tuple[Decision, str]:
    metric = LABELS[exp.primary_metric]
    control = exp.control
    if srm.mismatch:
        return "sample_ratio_mismatch", (
            f"Sample ratio mismatch: users per arm {users} do not match the shares "
            f"{srm.expected_shares} (p={srm.p_value:.2g}). Something assigns or records users "
            "unevenly; do not trust the comparison until that is explained.")
    needed = max((c.exposures_needed for c in comparisons.values() if c.exposures_needed is not None),
                 default=None)
    if not enough:  # at least the exposures that bring every arm to MIN_USERS (one per new user)
        shares = {a.name: a.share for a in exp.arms}
        short = max(math.ceil(max(0, MIN_USERS - n) / shares[name]) for name, n in users.items())
        needed = max(needed or 0, short)
    more = (f" ~{needed:,} more exposures needed to detect a lift of {exp.min_detectable_lift:.0%}"
            " or the one observed, whichever is larger (80% power).") if needed else ""
    missing = [n for n, c in comparisons.items() if c.lift is None]
    if not enough or missing or not comparisons:
        if not enough:
            reason = (f"every arm needs at least {MIN_USERS} exposed users (now: "
                      + ", ".join(f"{n} {k}" for n, k in users.items()) + ")")
        else:
            without = [n for n in (control, *missing) if not (primary[n].value or 0) > 0]
            reason = f"no {metric} events yet in {', '.join(without) or 'an arm'}"
        return "not_enough_data", f"Not enough data yet: {reason}.{more}"
    significant = {n: c for n, c in comparisons.items() if c.significant}
    if significant:
        best_name, best = max(significant.items(), key=lambda kv: kv[1].lift or 0.0)
        worse = [n for n, c in significant.items() if (c.lift or 0.0) < 0]
        if (best.lift or 0.0) > 0:
            text = (f"{best_name} is better than {control} on {metric}: {_about(best_name, control, best)}, "
                    f"with {_probability(best.probability_better)} probability. The test may be read "
                    "at any time, so this can be acted on now.")
            if worse:
                text += " Worse than the control: " + ", ".join(worse) + "."
            return "better", text
        name, c = min(significant.items(), key=lambda kv: kv[1].lift or 0.0)
        return "worse", (f"{name} is worse than {control} on {metric}: {_about(name, control, c)}, "
                         f"with {_probability(1 - (c.probability_better or 0.0))} probability.")
    summary = "; ".join(_about(n, control, c) for n, c in comparisons.items())
    return "no_difference_yet", (f"No significant difference yet on {metric}: {summary}. "
                                 f"Not enough data yet to call it:{more or ' keep it running.'}")
