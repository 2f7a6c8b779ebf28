"""The report's statistics against hand computations, SciPy, and simulated A/A tests."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from fastinsight.services.experiments import statistics as st


def test_ratio_estimate_is_the_delta_method() -> None:
    clicks = np.array([0, 1, 2, 0, 3, 1], dtype=float)
    shown = np.array([2, 2, 4, 1, 5, 2], dtype=float)
    est = st.ratio_estimate(clicks, shown)
    r = clicks.sum() / shown.sum()
    xbar, n = shown.mean(), len(shown)
    by_hand = (np.var(clicks, ddof=1) - 2 * r * np.cov(clicks, shown)[0, 1]
               + r * r * np.var(shown, ddof=1)) / (n * xbar**2)
    assert est.value == r and math.isclose(est.variance or 0, by_hand, rel_tol=1e-12)


def test_one_exposure_per_user_is_the_binomial_variance() -> None:
    y = np.array([1] * 30 + [0] * 70, dtype=float)
    est = st.ratio_estimate(y, np.ones(100))
    assert math.isclose(est.variance or 0, 0.3 * 0.7 / 99, rel_tol=1e-12)  # sample variance / n
    low, high = st.proportion_interval(st.Estimate(0.3, 0.3 * 0.7 / 100, 100, 30, 100))
    # Wilson 95% for 30/100 (textbook value 0.2189 - 0.3958)
    assert math.isclose(low or 0, 0.2189, abs_tol=5e-4) and math.isclose(high or 0, 0.3958, abs_tol=5e-4)


def test_compare_on_the_log_ratio() -> None:
    control = st.Estimate(0.10, 0.0001, 1000, 100, 1000)
    arm = st.Estimate(0.12, 0.0001, 1000, 120, 1000)
    cmp = st.compare(control, arm, min_lift=0.1)
    theta, var = math.log(1.2), 0.0001 / 0.12**2 + 0.0001 / 0.01
    assert math.isclose(cmp.lift or 0, 0.2)
    assert math.isclose(cmp.p_value_fixed_horizon or 0, 2 * stats.norm.sf(theta / math.sqrt(var)))
    assert math.isclose(cmp.probability_better or 0, stats.norm.cdf(theta / math.sqrt(var)))
    assert math.isclose(cmp.p_value or 0, min(1, 1 / mixture_lambda(theta, var, math.log(1.1))))
    # interval and p-value agree: the interval excludes 0 exactly when p < 0.05
    assert ((cmp.low or 0) > 0) == ((cmp.p_value or 1) < 0.05)
    # the interval's ends are where the likelihood ratio reaches 1 / 0.05
    for end in (cmp.low or 0, cmp.high or 0):
        d = theta - math.log1p(end)
        assert math.isclose(mixture_lambda(d, var, math.log(1.1)), 20, rel_tol=1e-6)


def mixture_lambda(theta: float, var: float, tau: float) -> float:
    """The mixture likelihood ratio written out: normals with scales 1, 3, 9, 27 x tau."""
    total = 0.0
    for scale, weight in ((1, 0.5), (3, 1 / 6), (9, 1 / 6), (27, 1 / 6)):
        t2 = (scale * tau) ** 2
        total += weight * math.sqrt(var / (var + t2)) * math.exp(theta**2 * t2 / (2 * var * (var + t2)))
    return total


def test_large_effects_in_small_samples_are_confirmed() -> None:
    """30% against 90% click-through on 40 users each: any sensible test says so."""
    control = st.Estimate(0.3, 0.3 * 0.7 / 40, 40, 12, 40)
    arm = st.Estimate(0.9, 0.9 * 0.1 / 40, 40, 36, 40)
    cmp = st.compare(control, arm, min_lift=0.1)
    assert cmp.significant and (cmp.p_value or 1) < 0.01
    assert st.compare(st.Estimate(None, None, 0, 0, 0), arm, min_lift=0.1).lift is None


def test_always_valid_p_value_survives_peeking_where_the_fixed_test_does_not() -> None:
    """600 simulated A/A tests, each looked at after every 100 users per arm up to
    5,000: stopping at the first p < 0.05 must stay below 5% for the sequential test
    (about 0.5% here: the guarantee holds for looks without end, so it is conservative);
    the fixed-horizon test read the same way goes far above it."""
    rng = np.random.default_rng(11)
    looks = np.arange(100, 5001, 100)
    sequential = naive = 0
    for _ in range(600):
        a = rng.random(5000) < 0.1
        b = rng.random(5000) < 0.1
        ca, cb = np.cumsum(a)[looks - 1], np.cumsum(b)[looks - 1]
        hit_seq = hit_naive = False
        for n, xa, xb in zip(looks, ca, cb, strict=True):
            pa, pb = xa / n, xb / n
            est_a = st.Estimate(pa, pa * (1 - pa) / n, int(n), float(xa), float(n))
            est_b = st.Estimate(pb, pb * (1 - pb) / n, int(n), float(xb), float(n))
            cmp = st.compare(est_a, est_b, min_lift=0.1)
            if cmp.p_value is None:
                continue
            hit_seq |= cmp.p_value < 0.05
            hit_naive |= (cmp.p_value_fixed_horizon or 1) < 0.05
        sequential += hit_seq
        naive += hit_naive
    assert sequential / 600 <= 0.05, sequential
    assert naive / 600 > 0.15, naive


def test_srm_and_share_interval() -> None:
    assert st.srm_p_value([2, 1], [0.5, 0.5]) is None
    p = st.srm_p_value([5200, 4800], [0.5, 0.5])
    assert math.isclose(p or 0, stats.chisquare([5200, 4800]).pvalue)
    assert (p or 1) < 0.001
    low, high = st.share_interval(2, 40)
    assert math.isclose(low, stats.beta.ppf(0.025, 2, 39)) and math.isclose(high, stats.beta.ppf(0.975, 3, 38))


def test_exposures_needed_shrinks_as_data_grows() -> None:
    control = st.Estimate(0.10, 0.10 * 0.9 / 500, 500, 50, 500)
    arm = st.Estimate(0.11, 0.11 * 0.89 / 500, 500, 55, 500)
    small = st.compare(control, arm, min_lift=0.1, exposures=1000)
    control4 = st.Estimate(0.10, 0.10 * 0.9 / 2000, 2000, 200, 2000)
    arm4 = st.Estimate(0.11, 0.11 * 0.89 / 2000, 2000, 220, 2000)
    large = st.compare(control4, arm4, min_lift=0.1, exposures=4000)
    assert small.exposures_needed and large.exposures_needed
    # the same total either way (about 56,000 exposures for 10% on a 10% rate), minus what was seen
    total_small, total_large = 1000 + small.exposures_needed, 4000 + large.exposures_needed
    assert abs(total_small - total_large) < 0.05 * total_small
    assert large.exposures_needed < small.exposures_needed


def test_permutation_p_value_matches_full_enumeration() -> None:
    """Four users per arm: all 70 splits enumerated by hand against the sampled test."""
    from itertools import combinations

    clicks = np.array([0, 1, 0, 2, 3, 1, 4, 2], dtype=float)
    shown = np.array([3, 2, 4, 5, 4, 2, 5, 3], dtype=float)
    control, arm = (clicks[:4], shown[:4]), (clicks[4:], shown[4:])

    def gap(members: tuple[int, ...]) -> float:
        rest = [u for u in range(8) if u not in members]
        return abs(clicks[list(members)].sum() / shown[list(members)].sum()
                   - clicks[rest].sum() / shown[rest].sum())

    observed = gap((4, 5, 6, 7))
    exact = np.mean([gap(c) >= observed - 1e-12 for c in combinations(range(8), 4)])
    sampled = st.permutation_p_value(control, arm, rounds=20_000, seed=3)
    assert sampled is not None and abs(sampled - exact) < 0.01
    assert st.permutation_p_value(control, (np.zeros(0), np.zeros(0))) is None


def test_fixed_horizon_p_value_is_calibrated_with_few_clustered_events() -> None:
    """A/A tests with ~100 users per arm, heavy-tailed exposures and a dozen clicks: the
    permutation test rejects about 5%; the normal approximation it replaces rejects far
    more (what bench/online.py found)."""
    rng = np.random.default_rng(11)
    permutation = normal = 0
    tests = 300
    for _ in range(tests):
        shown = np.minimum(np.floor(rng.pareto(1.2, 200) + 1), 200)
        rate = rng.gamma(0.5, 0.06 / 0.5, 200)  # users differ a lot in how often they click
        clicks = rng.binomial(shown.astype(int), np.minimum(rate, 1)).astype(float)
        control, arm = (clicks[:100], shown[:100]), (clicks[100:], shown[100:])
        cmp = st.compare(st.ratio_estimate(*control), st.ratio_estimate(*arm), min_lift=0.1,
                         samples=(control, arm))
        if cmp.p_value_fixed_horizon is None:
            continue
        permutation += cmp.p_value_fixed_horizon < 0.05
        plain = st.compare(st.ratio_estimate(*control), st.ratio_estimate(*arm), min_lift=0.1)
        normal += (plain.p_value_fixed_horizon or 1) < 0.05
    low, high = st.share_interval(permutation, tests)
    assert low <= 0.05 <= high, (permutation, normal)
    assert normal > permutation


def test_half_width_is_where_the_mixture_ratio_reaches_one_over_alpha() -> None:
    """The confidence sequence's half width solves msprt_log_lambda(h) = log(1 / alpha)
    over variances and prior scales many orders of magnitude apart."""
    for variance in (1e-9, 1e-6, 1e-3, 0.25, 4.0):
        for tau in (1e-4, 1e-2, 0.3, 5.0):
            for alpha in (0.01, 0.05, 0.2):
                half = st.msprt_half_width(variance, tau, alpha)
                target = math.log(1 / alpha)
                assert half > 0
                assert math.isclose(st.msprt_log_lambda(half, variance, tau), target, rel_tol=1e-9)
                assert st.msprt_log_lambda(half * (1 - 1e-6), variance, tau) < target
