"""``bench/hybrid_one_se.py``'s summary pairs the one-SE weights with the best point per user."""

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
    return importlib.import_module("hybrid_one_se")


def _rule(val: list[float], test: list[float]) -> dict[str, Any]:
    return {"per_user_val": val, "per_user_ndcg": test, "test_recall@10": 0.25}


def _seed(best_test: list[float], one_se_test: list[float]) -> dict[str, Any]:
    return {"rules": {"best": _rule([0.2, 0.4], best_test),
                      "one_se": _rule([0.1, 0.3], one_se_test)}}


def test_one_se_row_is_paired_with_the_best_rule_on_test_and_validation() -> None:
    h = _module()
    rows = h.summarise([_seed([0.1, 0.3, 0.5], [0.2, 0.4, 0.6]), _seed([0.0, 0.2], [0.1, 0.3])])
    assert [r["rule"] for r in rows] == ["best", "one_se"]
    best, one_se = rows
    assert best["diff"] == 0.0 and best["ci_low"] == 0.0
    assert one_se["diff"] == pytest.approx(0.1)
    assert one_se["ci_low"] == pytest.approx(0.1) and one_se["ci_high"] == pytest.approx(0.1)
    assert one_se["val_diff"] == pytest.approx(-0.1)
    assert one_se["test_ndcg@10"] == pytest.approx((0.4 + 0.2) / 2)
    assert one_se["validation_ndcg@10"] == pytest.approx(0.2)


def test_a_worse_rule_gives_a_negative_difference() -> None:
    rows = _module().summarise([_seed([0.5, 0.5], [0.4, 0.3])])
    assert rows[1]["diff"] == pytest.approx(-0.15) and rows[1]["ci_high"] < 0
