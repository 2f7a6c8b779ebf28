#!/usr/bin/env bash
# `make bench`: run the benchmarks against the local database and refresh
# bench/results/. Each prints JSON and a table. Expect ~95 minutes on 2 cores.
# Usage: scripts/bench.sh [name ...]   (default: all)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
started_db=0
if ! scripts/db.sh status >/dev/null 2>&1; then scripts/db.sh start; started_db=1; fi
trap 'if [[ $started_db == 1 ]]; then scripts/db.sh stop >/dev/null || true; fi' EXIT

all=(ingest serve serve_writes tenants train ann backup insights movielens_eval movielens_seeds two_tower_fit cold_start clients_js_size)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=("${all[@]}")
install_wrk() {
  # bench/serve.py's load generator (C, epoll): a Python client would compete with the
  # server for the same two cores.
  command -v wrk >/dev/null && return 0
  local sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo -n)
  if command -v apt-get >/dev/null; then
    echo "bench.sh: installing wrk (load generator for bench/serve.py)" >&2
    "${sudo[@]}" apt-get install -y -q wrk >/dev/null 2>&1 \
      || { "${sudo[@]}" apt-get update -q >/dev/null 2>&1 && "${sudo[@]}" apt-get install -y -q wrk >/dev/null; } \
      || true
  fi
  command -v wrk >/dev/null || { echo "bench.sh: bench/serve.py needs wrk; install it with your package manager" >&2; exit 2; }
}

for name in "${names[@]}"; do
  [[ -f "bench/$name.py" ]] || { echo "bench.sh: no bench/$name.py" >&2; exit 2; }
  [[ $name != serve && $name != serve_writes && $name != tenants ]] || install_wrk
  echo "== bench/$name.py"
  .venv/bin/python "bench/$name.py"
done
