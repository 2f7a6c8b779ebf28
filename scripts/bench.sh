#!/usr/bin/env bash
# `make bench`: run the benchmarks against the local database and refresh
# bench/results/. Each prints JSON and a table. Expect ~1 hour on 2 cores.
# Usage: scripts/bench.sh [name ...]   (default: all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
started_db=0
if ! scripts/db.sh status >/dev/null 2>&1; then scripts/db.sh start; started_db=1; fi
trap 'if [[ $started_db == 1 ]]; then scripts/db.sh stop >/dev/null || true; fi' EXIT

all=(ingest serve train ann backup insights movielens_eval two_tower_fit cold_start)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${all[@]}")
for name in "${names[@]}"; do
  [[ -f "bench/$name.py" ]] || { echo "bench.sh: no bench/$name.py" >&2; exit 2; }
  echo "== bench/$name.py"
  .venv/bin/python "bench/$name.py"
done
