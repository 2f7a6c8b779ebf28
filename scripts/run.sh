#!/usr/bin/env bash
# `make run`: install, start the local database (unless FASTINSIGHT_MONGODB_URI points
# elsewhere), load demo data on first run, train a model, then serve API + dashboard.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
mkdir -p var

# Keys: taken from the environment, else generated once and kept in var/keys.env.
if [[ -z "${FASTINSIGHT_API_KEY:-}" || -z "${FASTINSIGHT_ADMIN_KEY:-}" ]]; then
  if [[ ! -f var/keys.env ]]; then
    umask 077
    {
      echo "FASTINSIGHT_API_KEY=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')"
      echo "FASTINSIGHT_ADMIN_KEY=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))')"
    } >var/keys.env
  fi
  set -a; source var/keys.env; set +a
fi

started_db=0
if [[ -z "${FASTINSIGHT_MONGODB_URI:-}" ]]; then
  if ! scripts/db.sh status >/dev/null 2>&1; then scripts/db.sh start; started_db=1; fi
  export FASTINSIGHT_MONGODB_URI="$(scripts/db.sh uri)"
fi
stop_db() { if [[ $started_db == 1 ]]; then scripts/db.sh stop || true; fi; }
trap stop_db EXIT

FI=.venv/bin/fastinsight
$FI db init >/dev/null
if [[ ! -f var/.demo-loaded ]]; then
  if [[ -n "${FASTINSIGHT_DEMO_MOVIELENS:-}" ]]; then
    $FI demo --movielens "$FASTINSIGHT_DEMO_MOVIELENS"
  else
    $FI demo --users 2000 --items 1000 --interactions 60000
  fi
  touch var/.demo-loaded
fi
$FI train --algorithm "${FASTINSIGHT_DEFAULT_ALGORITHM:-als}"
$FI insights refresh --segments

host="${FASTINSIGHT_HOST:-127.0.0.1}"
port="${FASTINSIGHT_PORT:-8000}"
cat <<MSG

  FastInsight is starting on http://$host:$port
    API docs   http://$host:$port/docs
    Dashboard  http://$host:$port/dashboard   (sign in with the API key)
    API key    $FASTINSIGHT_API_KEY
    Admin key  $FASTINSIGHT_ADMIN_KEY
  Try: curl -H "X-API-Key: $FASTINSIGHT_API_KEY" http://$host:$port/v1/users/user-000001/recommendations
  Stop with Ctrl-C.

MSG
$FI serve --host "$host" --port "$port"
