"""Assignment is a pure function of (salt, user id): same answer in every process, shares kept."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

from fastinsight.services.experiments.assignment import ArmPicker, assign, bucket, traffic_bucket
from tests.conftest import ROOT

USERS = [f"user-{n:05d}" for n in range(10_000)]


def test_buckets_are_uniform_and_salted() -> None:
    values = [bucket("s1", u) for u in USERS]
    assert all(0 <= v < 1 for v in values)
    deciles = Counter(int(v * 10) for v in values)
    assert all(abs(deciles[d] - 1000) < 150 for d in range(10)), deciles
    other = [bucket("s2", u) for u in USERS]
    same_half = sum((a < 0.5) == (b < 0.5) for a, b in zip(values, other, strict=True))
    assert abs(same_half - 5000) < 300  # another salt: an independent split
    traffic = [traffic_bucket(u) for u in USERS]
    assert sum((a < 0.5) == (b < 0.5) for a, b in zip(values, traffic, strict=True)) < 5300


def test_shares_within_tolerance_over_10000_users() -> None:
    shares = [0.5, 0.3, 0.2]
    counts = Counter(assign("exp-shares", shares, u) for u in USERS)
    for arm, share in enumerate(shares):
        assert abs(counts[arm] / len(USERS) - share) < 0.02, counts


def test_picker_edges() -> None:
    picker = ArmPicker([0.25, 0.25, 0.5])
    assert [picker.pick(v) for v in (0.0, 0.2499, 0.25, 0.4999, 0.5, 0.9999)] == [0, 0, 1, 1, 2, 2]


def test_same_assignment_in_another_process() -> None:
    code = ("import sys; from fastinsight.services.experiments.assignment import assign;"
            "print(','.join(str(assign('exp-proc', [0.5, 0.5], f'user-{n:05d}')) for n in range(500)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "PYTHONHASHSEED": "123"}).stdout
    here = [str(assign("exp-proc", [0.5, 0.5], f"user-{n:05d}")) for n in range(500)]
    assert out.strip().split(",") == here
