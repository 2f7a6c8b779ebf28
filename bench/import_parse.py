"""JSON array import parsing: this tree's streaming reader against the reader of a base
commit and against ``json.loads`` of the whole body (no streaming: the lower bound on
decode cost, with the whole input and all rows in memory at once).

Inputs: rows of the demo's interactions as one JSON array, and one long row (a string
of N MB) both complete and never terminated, the case that made the base reader
quadratic, and one long row made of escapes. Rounds are interleaved (every reader on every input in each round); the
table gives the median seconds and the spread (min-max) over rounds. Parsing only: no
database.

    .venv/bin/python bench/import_parse.py [--base-ref 495a79b] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, "src")
from _common import checkout_ref, drop_checkout, head, table, write_result
from fastinsight.errors import ValidationFailed
from fastinsight.services.data.demo import DemoSize, synthetic_interactions
from fastinsight.services.data.parsing import Format, read_rows

Reader = Callable[[bytes], int]


def _streaming(read: Callable[..., Any]) -> Reader:
    def run(body: bytes) -> int:
        try:
            return sum(1 for _ in read(io.BytesIO(body), Format.JSON, "interactions"))
        except ValidationFailed:
            return -1  # refused (the unterminated input): what is timed is reaching the refusal
    return run


def _whole(body: bytes) -> int:
    try:
        return len(json.loads(body))
    except ValueError:
        return -1


def _base_reader(tree: Path) -> Reader:
    path = tree / "src/fastinsight/services/data/parsing.py"
    spec = importlib.util.spec_from_file_location("base_parsing", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["base_parsing"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return _streaming(module.read_rows)


def _inputs(rows: int, megabytes: list[int]) -> dict[str, bytes]:
    events = list(synthetic_interactions(DemoSize(users=20_000, items=2_000, interactions=rows, seed=11)))
    out = {f"{rows:,} rows": json.dumps(events).encode()}
    for mb in megabytes:
        text = "x" * (mb * 1024 * 1024)
        out[f"one {mb} MB row"] = f'[{{"user_id": "{text}"}}]'.encode()
        out[f"one {mb} MB row, unterminated"] = f'[{{"user_id": "{text}'.encode()
    escapes = "\\\\" * (max(megabytes) * 512 * 1024)  # backslash pairs: one escape per 2 bytes
    out[f"one {max(megabytes)} MB row of escapes"] = f'[{{"user_id": "{escapes}"}}]'.encode()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-ref", default="495a79b")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--megabytes", default="4,8,16")
    args = parser.parse_args()
    inputs = _inputs(args.rows, [int(m) for m in args.megabytes.split(",")])
    base_tree = checkout_ref(args.base_ref)
    try:
        readers: dict[str, Reader] = {"this tree": _streaming(read_rows),
                                      f"base {args.base_ref}": _base_reader(base_tree),
                                      "json.loads (whole body)": _whole}
        times: dict[tuple[str, str], list[float]] = {(i, r): [] for i in inputs for r in readers}
        answers: dict[tuple[str, str], int] = {}
        for _ in range(args.rounds):
            for name, body in inputs.items():
                for reader, run in readers.items():
                    started = time.perf_counter()
                    answers[name, reader] = run(body)
                    times[name, reader].append(time.perf_counter() - started)
    finally:
        drop_checkout(base_tree.parent / "tree")
    rows = []
    for (name, reader), seconds in times.items():
        rows.append({"input": name, "bytes": len(inputs[name]), "reader": reader,
                     "rows_read": answers[name, reader], "median_s": statistics.median(seconds),
                     "min_s": min(seconds), "max_s": max(seconds), "seconds": seconds})
    write_result("import_parse", {"benchmark": "import_parse", "commit": head(),
                                  "base_ref": args.base_ref, "rounds": args.rounds, "results": rows})
    print(json.dumps(rows, indent=2))
    print(table(rows, ["input", "reader", "rows_read", "median_s", "min_s", "max_s"], digits=3))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
