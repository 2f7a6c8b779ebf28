"""The statistics of an experiment report (explained in docs/experiments.md).

- The unit of randomisation is the user, so every metric is a ratio of per-user sums
  (clicked exposures / exposures, converted users / users, value / users) and its
  variance comes from the delta method over users: a user who sees many lists counts
  once, not as many independent trials (the naive binomial variance would be too small
  and declare differences that are not there).
- Arms are compared on the log of the ratio (relative lift), with a normal
  approximation. The p-value and interval are *always valid*: a mixture sequential
  probability ratio test (mSPRT), so the report may be read after every exposure
  without inflating false positives. The mixing distribution over the log-lift is a
  mixture of centred normals with scales 1, 3, 9 and 27 times ``log(1 +
  min_detectable_lift)`` (weights 1/2, 1/6, 1/6, 1/6): one scale alone is tuned to one
  effect size and is very slow to confirm much larger ones; a mixture of likelihood
  ratios is still one, so the guarantee holds. The classical fixed-horizon p-value is
  given alongside, valid only when read once at a sample size fixed in advance. With
  few users it comes from a permutation test over users (arm labels shuffled, the
  difference of the two ratios as the statistic; exact under the null whatever the
  distribution), because the normal approximation is too liberal with few, clustered
  events (``bench/online.py`` found 8 of 40 A/A tests "significant" with it at ~100
  users and a dozen clicks per arm); with many users, the normal approximation.
- ``probability_better`` is the posterior probability of a positive lift under a flat
  prior with the same normal approximation.
- Sample ratio mismatch: a chi-square goodness-of-fit test of users per arm against
  the configured shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
SRM_ALPHA = 0.001
POWER = 0.8
Z95 = float(stats.norm.ppf(0.975))


@dataclass(frozen=True)
class Estimate:
    """A ratio of per-user sums with its delta-method variance."""

    value: float | None
    variance: float | None
    users: int
    numerator: float
    denominator: float


def ratio_estimate(numerators: np.ndarray, denominators: np.ndarray) -> Estimate:
    n = len(numerators)
    num, den = float(numerators.sum()), float(denominators.sum())
    if n == 0 or den <= 0:
        return Estimate(None, None, n, num, den)
    ratio = num / den
    if n < 2:
        return Estimate(ratio, None, n, num, den)
    # Var(sum y / sum x) ~ Var(y - R x) / (n * mean(x)^2): the delta method for a ratio.
    residual = numerators - ratio * denominators
    mean_den = den / n
    variance = float(residual.var(ddof=1)) / (n * mean_den**2)
    return Estimate(ratio, variance, n, num, den)


def proportion_interval(est: Estimate, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson interval on the effective sample size p(1-p)/Var (clustering included)."""
    p = est.value
    if p is None:
        return None, None
    if est.variance is None or est.variance <= 0 or p <= 0 or p >= 1:
        n = max(est.denominator, 1.0)
    else:
        n = p * (1 - p) / est.variance
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(est: Estimate, z: float = Z95) -> tuple[float | None, float | None]:
    if est.value is None or est.variance is None:
        return None, None
    half = z * math.sqrt(max(est.variance, 0.0))
    return est.value - half, est.value + half


@dataclass(frozen=True)
class Comparison:
    lift: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    p_value_fixed_horizon: float | None = None
    probability_better: float | None = None
    significant: bool = False
    exposures_needed: int | None = None


MIX_SCALES = (1.0, 3.0, 9.0, 27.0)
MIX_WEIGHTS = (0.5, 1 / 6, 1 / 6, 1 / 6)


def normal_log_lambda(theta: float, variance: float, tau2: float) -> float:
    """log of the likelihood ratio for H0: effect = 0 against effects drawn from N(0, tau2)."""
    total = variance + tau2
    return 0.5 * math.log(variance / total) + theta * theta * tau2 / (2 * variance * total)


def msprt_log_lambda(theta: float, variance: float, tau: float) -> float:
    """log of the mixture likelihood ratio (the scale mixture of ``MIX_SCALES``)."""
    terms = [math.log(w) + normal_log_lambda(theta, variance, (s * tau) ** 2)
             for s, w in zip(MIX_SCALES, MIX_WEIGHTS, strict=True)]
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms))


def msprt_half_width(variance: float, tau: float, alpha: float) -> float:
    """Half width of the always-valid (1 - alpha) confidence sequence around the estimate:
    the distance at which the mixture likelihood ratio reaches 1 / alpha.

    In ``u = theta**2`` the log ratio is a log-sum-exp of lines, so convex and increasing:
    Newton's method from a point at or above the root comes down to it without
    overshooting (each step's tangent lies below the curve). The upper bracket is where
    one component alone reaches its share of the target."""
    target = math.log(1 / alpha)
    scales = [(s * tau) ** 2 for s in MIX_SCALES]
    offsets = [math.log(w) + 0.5 * math.log(variance / (variance + t2))
               for t2, w in zip(scales, MIX_WEIGHTS, strict=True)]
    slopes = [t2 / (2 * variance * (variance + t2)) for t2 in scales]
    u = min((target - math.log(w) - a) / b for a, b, w in zip(offsets, slopes, MIX_WEIGHTS, strict=True))
    u = max(u, 0.0)
    for _ in range(100):
        lines = [a + b * u for a, b in zip(offsets, slopes, strict=True)]
        top = max(lines)
        weights = [math.exp(line - top) for line in lines]
        total = sum(weights)
        excess = top + math.log(total) - target
        if excess <= 0:
            break  # at the root, to rounding
        step = excess / (sum(w * b for w, b in zip(weights, slopes, strict=True)) / total)
        u -= step
        if step <= 1e-13 * u:
            break
    return math.sqrt(max(u, 0.0))


PERMUTATIONS = 2000
PERMUTATION_MAX_USERS = 20_000
Sample = tuple[np.ndarray, np.ndarray]  # per-user numerators and denominators


def permutation_p_value(control: Sample, arm: Sample, rounds: int = PERMUTATIONS,
                        seed: int = 0) -> float | None:
    """Two-sided permutation p-value of ratio(arm) - ratio(control), users as the unit;
    None beyond ``PERMUTATION_MAX_USERS`` users or without data in an arm."""
    num = np.concatenate([control[0], arm[0]]).astype(np.float64)
    den = np.concatenate([control[1], arm[1]]).astype(np.float64)
    n, n_arm = len(num), len(arm[0])
    if n > PERMUTATION_MAX_USERS or n_arm == 0 or n_arm == n:
        return None
    if den[n - n_arm:].sum() <= 0 or den[: n - n_arm].sum() <= 0:
        return None

    def difference(idx: np.ndarray) -> np.ndarray:  # rows of user indices, the arm first
        a_num, a_den = num[idx[:, :n_arm]].sum(axis=1), den[idx[:, :n_arm]].sum(axis=1)
        c_num, c_den = num[idx[:, n_arm:]].sum(axis=1), den[idx[:, n_arm:]].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            gap: np.ndarray = np.abs(a_num / a_den - c_num / c_den)
        return gap

    observed = difference(np.roll(np.arange(n), n_arm)[None, :])[0]
    rng = np.random.default_rng(seed)
    chunk = max(1, min(rounds, 4_000_000 // n))
    extreme = done = 0
    while done < rounds:
        size = min(chunk, rounds - done)
        idx = rng.permuted(np.tile(np.arange(n), (size, 1)), axis=1)
        stats_ = difference(idx)
        # A permutation with an empty denominator in a group says nothing: it counts
        # as extreme (conservative).
        extreme += int(np.sum(~(stats_ < observed - 1e-12)))
        done += size
    return (1 + extreme) / (1 + rounds)


def compare(control: Estimate, arm: Estimate, *, min_lift: float, alpha: float = ALPHA,
            exposures: int = 0, samples: tuple[Sample, Sample] | None = None) -> Comparison:
    """``arm`` against ``control`` on the log ratio; None fields when either arm lacks data.
    ``samples`` (control's, arm's per-user sums) give the fixed-horizon p-value by
    permutation when there are few users."""
    if (control.value is None or arm.value is None or control.variance is None
            or arm.variance is None or control.value <= 0 or arm.value <= 0):
        return Comparison()
    theta = math.log(arm.value) - math.log(control.value)
    variance = arm.variance / arm.value**2 + control.variance / control.value**2
    if variance <= 0:
        return Comparison()
    tau = math.log1p(min_lift)
    p_value = min(1.0, math.exp(-msprt_log_lambda(theta, variance, tau)))
    half = msprt_half_width(variance, tau, alpha)
    se = math.sqrt(variance)
    fixed = permutation_p_value(*samples) if samples is not None else None
    if fixed is None:
        fixed = math.erfc(abs(theta) / se / math.sqrt(2))  # two-sided normal tail
    return Comparison(
        lift=math.expm1(theta), low=math.expm1(theta - half), high=math.expm1(theta + half),
        p_value=p_value, p_value_fixed_horizon=fixed,
        probability_better=0.5 * math.erfc(-theta / se / math.sqrt(2)), significant=p_value < alpha,
        exposures_needed=_exposures_needed(theta, variance, tau, alpha, min_lift, exposures),
    )


def _exposures_needed(theta: float, variance: float, tau: float, alpha: float, min_lift: float,
                      exposures: int) -> int | None:
    """More exposures until an effect of max(|observed|, min_lift) would cross the
    sequential boundary with ``POWER``, assuming the variance falls as 1 / exposures."""
    if exposures <= 0:
        return None
    effect = max(abs(theta), math.log1p(min_lift))
    z_power = float(stats.norm.ppf(POWER))

    def enough(factor: float) -> bool:  # more data only helps: monotone in factor
        v = variance / factor
        return effect - z_power * math.sqrt(v) >= msprt_half_width(v, tau, alpha)

    if enough(1.0):
        return 0
    high = 2.0
    while not enough(high):
        high *= 2
        if high > 1e7:
            return None
    low = high / 2
    while high - low > 0.01 * low:
        mid = (low + high) / 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return math.ceil(exposures * (high - 1))


def srm_p_value(users: Sequence[int], shares: Sequence[float]) -> float | None:
    """Chi-square goodness of fit of users per arm to the shares; None with too few users."""
    total = sum(users)
    expected = [total * s / sum(shares) for s in shares]
    if total == 0 or min(expected) < 5:
        return None
    return float(stats.chisquare(np.asarray(users, dtype=float), np.asarray(expected)).pvalue)


def share_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a proportion (for the A/A false-positive share)."""
    tail = (1 - confidence) / 2
    low = 0.0 if successes == 0 else float(stats.beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(stats.beta.ppf(1 - tail, successes + 1, trials - successes))
    return low, high
