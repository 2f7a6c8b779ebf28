"""``bench/staged_alternation.py``'s summary pairs the fixed point with the one pass per user."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _module() -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("staged_alternation")


def _model(per_user: list[float], trials: int, seconds: float, steps: int) -> dict[str, Any]:
    mean = sum(per_user) / len(per_user)
    return {"per_user": per_user, "refit_test_ndcg@10": mean, "run_test_ndcg@10": mean,
            "validation_ndcg@10": 0.2, "trials": trials, "search_seconds": seconds,
            "alternations": steps, "fixed_point": True}


def _seed(seed: int, one: list[float], fixed: list[float]) -> dict[str, Any]:
    models = {}
    for name in ("als", "implicit_als"):
        models[f"{name} (one pass)"] = _model(one, 30, 100.0, 0)
        models[f"{name} (fixed point)"] = _model(fixed, 90, 300.0, 2)
    return {"seed": seed, "models": models}


def test_difference_is_fixed_point_minus_one_pass_per_user() -> None:
    sa = _module()
    seeds = [_seed(0, [0.1, 0.3, 0.5], [0.2, 0.4, 0.6]), _seed(1, [0.0, 0.2], [0.1, 0.3])]
    rows = sa.summarise(seeds)
    assert [r["model"] for r in rows] == ["als", "implicit_als"]
    row = rows[0]
    assert row["difference"] == pytest.approx(0.1)
    assert row["ci_low"] == pytest.approx(0.1) and row["ci_high"] == pytest.approx(0.1)
    assert row["per seed"] == "+0.1000, +0.1000"
    assert row["test one pass"] == pytest.approx((0.3 + 0.1) / 2)
    assert row["trials fixed point"] == 90 and row["search s one pass"] == 100.0
    assert row["alternations per seed"] == "2, 2" and row["largest refit gap"] == 0.0


def test_a_worse_fixed_point_gives_a_negative_difference() -> None:
    sa = _module()
    rows = sa.summarise([_seed(0, [0.5, 0.5, 0.5, 0.5], [0.4, 0.5, 0.3, 0.5])])
    assert rows[0]["difference"] == pytest.approx(-0.075)
    assert rows[0]["ci_high"] <= 0.0
