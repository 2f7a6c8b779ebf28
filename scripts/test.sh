#!/usr/bin/env bash
# `make test`: install everything, start the local database (unless
# FASTINSIGHT_TEST_MONGODB_URI names another server), run the tests, and stop every
# process this script started, whatever the outcome.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/bootstrap.sh
scripts/install_system_deps.sh

started_db=0
cleanup() {
  if [[ $started_db == 1 ]]; then scripts/db.sh stop >/dev/null || true; fi
}
trap cleanup EXIT

if [[ -z "${FASTINSIGHT_TEST_MONGODB_URI:-}" ]]; then
  export FASTINSIGHT_DB_ADDR="${FASTINSIGHT_DB_ADDR:-127.0.0.1:27017}"
  if ! scripts/db.sh status >/dev/null 2>&1; then
    scripts/db.sh start
    started_db=1
  fi
  export FASTINSIGHT_TEST_MONGODB_URI="mongodb://$FASTINSIGHT_DB_ADDR/"
fi

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [[ $status == 5 ]]; then
  echo "test.sh: pytest collected no tests" >&2
  exit 1
fi
exit $status
