#!/usr/bin/env bash
# `make fuzz`: the long schema fuzz before a release. Starts a real API over a fresh,
# seeded database and runs Schemathesis (all checks) with the API key and with the admin
# key; exits 1 on any failure. Reports and logs land in var/fuzz/.
# Usage: scripts/fuzz.sh [--max-examples N] [--seed S] [--summary bench/results/fuzz.json]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
started_db=0
if [[ -z "${FASTINSIGHT_TEST_MONGODB_URI:-}" ]]; then
  if ! scripts/db.sh status >/dev/null 2>&1; then scripts/db.sh start; started_db=1; fi
  FASTINSIGHT_TEST_MONGODB_URI="$(scripts/db.sh uri)"
  export FASTINSIGHT_TEST_MONGODB_URI
fi
trap 'if [[ $started_db == 1 ]]; then scripts/db.sh stop >/dev/null || true; fi' EXIT
.venv/bin/python -m tests.fuzz "$@"
