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
    assert calls == []


def test_study_table_lists_columns_then_extras() -> None:
    lines = _common().study_table([{"a": 1, "c": "x"}], ["a"], {"choice": "c"})
    assert lines == ["| a | choice |", "|---|---|", "| 1 | x |"]
