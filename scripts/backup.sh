#!/usr/bin/env bash
# Back up the FastInsight database to a verified, timestamped .tar.gz, then apply retention.
set -euo pipefail
# shellcheck source=scripts/_ops_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_ops_common.sh"

usage() {
  cat <<EOF
usage: $OPS_NAME [--out DIR] [--keep N] [--keep-days DAYS] [--no-retention]
                 [--pause-writes] [--tool auto|python|mongodump]

Dumps every collection (mongodump directory layout: <db>/<coll>.bson and
<db>/<coll>.metadata.json) plus a sha256 manifest into
fastinsight-<db>-<UTC time>.tar.gz, reads it back to verify it, then deletes
archives that are neither among the N newest nor younger than DAYS.

  --out DIR         backup directory (default: FASTINSIGHT_BACKUP_DIR or var/backups)
  --keep N          always keep the N newest archives (default: FASTINSIGHT_BACKUP_KEEP=7)
  --keep-days DAYS  also keep archives younger than DAYS (default: 14)
  --no-retention    delete nothing
  --pause-writes    API writes answer 503 during the dump (consistent across collections)
  --tool T          mongodump when installed (auto), or the built-in Python dumper

Database: FASTINSIGHT_MONGODB_URI / FASTINSIGHT_MONGODB_DB.
Exit codes: 0 ok, 1 failed, 2 usage, 3 the written archive failed verification.
EOF
}

args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --out) need_value "$@"; args+=(--out "$2"); shift 2 ;;
    --keep) need_int "$@"; args+=(--keep "$2"); shift 2 ;;
    --keep-days) need_number "$@"; args+=(--keep-days "$2"); shift 2 ;;
    --no-retention) args+=(--no-retention); shift ;;
    --pause-writes) args+=(--pause-writes); shift ;;
    --tool)
      need_value "$@"
      [[ "$2" =~ ^(auto|python|mongodump)$ ]] || die_usage "--tool must be auto, python or mongodump"
      args+=(--tool "$2"); shift 2 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

exec "$(fastinsight_bin)" backup ${args[@]+"${args[@]}"}
