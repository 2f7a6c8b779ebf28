#!/usr/bin/env bash
# Local MongoDB-compatible database for development, tests and `make run`:
# FerretDB v1.24 with its SQLite handler, built from the Go module proxy and cached
# under var/. Production points FASTINSIGHT_MONGODB_URI at a real MongoDB instead.
set -euo pipefail

FERRETDB_VERSION="${FERRETDB_VERSION:-v1.24.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${FASTINSIGHT_VAR_DIR:-$ROOT/var}"
# The suffix names the local patch below, so a binary built without it is not reused.
BIN="${FERRETDB_BIN:-$ROOT/var/bin/ferretdb-$FERRETDB_VERSION-idpatch}"
DATA="${FASTINSIGHT_DB_DATA:-$VAR/db}"
PIDFILE="$DATA/ferretdb.pid"
LOG="$DATA/ferretdb.log"
ADDR="${FASTINSIGHT_DB_ADDR:-127.0.0.1:27017}"

usage() {
  cat <<EOF
usage: scripts/db.sh start|stop|status|build|uri

  build    build FerretDB $FERRETDB_VERSION into $BIN (once; cached)
  start    build if needed, start on $ADDR (data in $DATA), wait until it answers ping
  stop     stop the server started by 'start'
  status   exit 0 if the server answers ping, 1 otherwise
  uri      print the MongoDB URI of the local server

Environment: FASTINSIGHT_DB_ADDR (host:port), FASTINSIGHT_DB_DATA (data directory),
FASTINSIGHT_VAR_DIR, FERRETDB_BIN (binary path), FERRETDB_VERSION.
EOF
}

build() {
  if [[ -x "$BIN" ]]; then return 0; fi
  command -v go >/dev/null || { echo "db.sh: the Go toolchain is needed to build FerretDB" >&2; exit 2; }
  mkdir -p "$(dirname "$BIN")"
  local work
  work="$(mktemp -d)"
  echo "db.sh: building FerretDB $FERRETDB_VERSION (first run only)..." >&2
  # A throw-away module that builds the command from a local copy of the module
  # source (fetched through the Go module proxy) with build/version/version.txt
  # written in: the published module lacks that generated file, and recent Go
  # toolchains report FerretDB as the main module, so its start-up check panics.
  (
    cd "$work"
    go mod init fastinsight.local/ferretdb-build >/dev/null 2>&1
    go get "github.com/FerretDB/FerretDB/cmd/ferretdb@$FERRETDB_VERSION" >/dev/null 2>&1 \
      || go get "github.com/FerretDB/FerretDB/cmd/ferretdb@$FERRETDB_VERSION"
    local src
    src="$(go list -m -f '{{.Dir}}' "github.com/FerretDB/FerretDB")"
    cp -r "$src" ferretdb-src
    chmod -R u+w ferretdb-src
    echo "$FERRETDB_VERSION" >ferretdb-src/build/version/version.txt
    patch_id_lookup ferretdb-src
    go mod edit -replace "github.com/FerretDB/FerretDB=./ferretdb-src"
    go build -o "$BIN.tmp" github.com/FerretDB/FerretDB/cmd/ferretdb
  )
  rm -rf "$work"
  mv "$BIN.tmp" "$BIN"
}

patch_id_lookup() {
  # FerretDB 1.24's SQLite handler creates the unique _id index on the expression
  # `_ferretdb_sjson->"_id"` but filters, updates and deletes by `_ferretdb_sjson->'$._id'`.
  # SQLite only uses an expression index for the same expression, so every lookup by
  # _id scanned the table (280 ms for one user among 200,000). Writing the predicate
  # as `->'_id'` (the same expression as the index) turns those scans into index
  # searches; results are identical. Fails loudly if the source no longer matches.
  local file="$1/internal/backends/sqlite/metadata/metadata.go"
  grep -q "IDColumn = DefaultColumn + \"->'\$._id'\"" "$file" \
    || { echo "db.sh: cannot apply the _id index patch to $file" >&2; exit 2; }
  sed -i "s/IDColumn = DefaultColumn + \"->'\$._id'\"/IDColumn = DefaultColumn + \"->'_id'\"/" "$file"
  grep -q "IDColumn = DefaultColumn + \"->'_id'\"" "$file" \
    || { echo "db.sh: the _id index patch did not apply" >&2; exit 2; }
}

ping_db() {
  # A real MongoDB-protocol ping through the driver the app uses.
  local py="${PYTHON:-$ROOT/.venv/bin/python}"
  [[ -x "$py" ]] || py=python3
  "$py" - "$ADDR" <<'PY' >/dev/null 2>&1
import sys
from pymongo import MongoClient
c = MongoClient(f"mongodb://{sys.argv[1]}/", serverSelectionTimeoutMS=500, connectTimeoutMS=500)
c.admin.command("ping")
PY
}

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

start() {
  build
  if ping_db; then echo "db.sh: database already answering on $ADDR"; return 0; fi
  mkdir -p "$DATA"
  nohup "$BIN" \
    --listen-addr="$ADDR" \
    --handler=sqlite \
    --sqlite-url="file:$DATA/" \
    --state-dir="$DATA" \
    --telemetry=disable \
    --debug-addr=- \
    --log-level=warn \
    >>"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 150); do
    if ping_db; then echo "db.sh: FerretDB $FERRETDB_VERSION ready on $ADDR"; return 0; fi
    if ! running_pid >/dev/null; then
      echo "db.sh: FerretDB exited during start-up; last log lines:" >&2
      tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  echo "db.sh: FerretDB did not answer ping within 30s (log: $LOG)" >&2
  exit 1
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    echo "db.sh: stopped (pid $pid)"
  else
    echo "db.sh: not running"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  status) if ping_db; then echo "up ($ADDR)"; else echo "down ($ADDR)"; exit 1; fi ;;
  uri) echo "mongodb://$ADDR/" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
