"""The over-seeds studies' shared helpers in ``bench/_common.py``."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _common() -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("_common")


def test_a_missing_data_set_runs_no_seed(tmp_path: Path) -> None:
    calls: list[int] = []
    args = argparse.Namespace(data=tmp_path, seeds="0,1")
    assert _common().binary_seed_runs(args, lambda data, seed: calls.append(seed) or {}) is None
    assert _common().product_seed_runs(args, lambda data, seed: calls.append(seed) or {}) is None
    assert calls == []


def test_each_seed_runs_on_the_protocols_data(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(f"1,{m},{5 if m < 6 else 2},{100 + m}\n" for m in range(1, 8))
        + "2,1,4,100\n")
    args = argparse.Namespace(data=tmp_path, seeds="3,5")
    seen: dict[str, list[tuple[int, int, int]]] = {"binary": [], "product": []}

    def run(kind: str) -> Any:
        def record(data: Any, seed: int) -> dict[str, Any]:
            seen[kind].append((seed, data.n_users, data.context.size))
            return {"seed": seed}
        return record

    assert _common().binary_seed_runs(args, run("binary")) == [{"seed": 3}, {"seed": 5}]
    assert _common().product_seed_runs(args, run("product")) == [{"seed": 3}, {"seed": 5}]
    # binary: user 2 (one positive) filtered out, no context; product: both users, the
    # two ratings below 4 as context
    assert seen == {"binary": [(3, 1, 0), (5, 1, 0)], "product": [(3, 2, 2), (5, 2, 2)]}


def test_drop_per_user_removes_the_named_key_of_each_entry() -> None:
    seeds = [{"models": {"a": {"per_user": [1.0], "mean": 1.0}}, "families": {}}]
    _common().drop_per_user(seeds, "models", "per_user")
    assert seeds == [{"models": {"a": {"mean": 1.0}}, "families": {}}]


def test_study_table_lists_columns_then_extras() -> None:
    lines = _common().study_table([{"a": 1, "c": "x"}], ["a"], {"choice": "c"})
    assert lines == ["| a | choice |", "|---|---|", "| 1 | x |"]
