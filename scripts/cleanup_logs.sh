#!/usr/bin/env bash
# Rotate/compress/expire logs, prune old model versions (and their files) and job records.
set -euo pipefail
# shellcheck source=scripts/_ops_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_ops_common.sh"

usage() {
  cat <<EOF
usage: $OPS_NAME [--days DAYS] [--model-keep N] [--job-days DAYS] [--log-dir DIR]
                 [--logs-only] [--dry-run]

  --days DAYS      expire logs not modified for DAYS (default FASTINSIGHT_LOG_KEEP_DAYS=14);
                   live *.log/*.jsonl above 50 MiB are gzip-rotated (copy + truncate);
                   only regular files: symbolic links are never followed or touched
  --model-keep N   keep N model versions (N >= 2), the active one included: the active
                   version, the one active before it, then the newest others
                   (default FASTINSIGHT_MODEL_KEEP_VERSIONS=5); the artefacts of the
                   others go too
  --job-days DAYS  delete finished job records older than DAYS (default 30)
  --log-dir DIR    default FASTINSIGHT_LOG_DIR (var/log)
  --logs-only      leave the database alone
  --dry-run        report what would be freed; change nothing

Prints a JSON report including bytes_freed.
Exit codes: 0 ok, 1 failed, 2 usage.
EOF
}

args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --days) need_number "$@"; args+=(--days "$2"); shift 2 ;;
    --model-keep) need_int "$@"; args+=(--model-keep "$2"); shift 2 ;;
    --job-days) need_number "$@"; args+=(--job-days "$2"); shift 2 ;;
    --log-dir) need_value "$@"; args+=(--log-dir "$2"); shift 2 ;;
    --logs-only) args+=(--skip-db); shift ;;
    --dry-run) args+=(--dry-run); shift ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

exec "$(fastinsight_bin)" cleanup ${args[@]+"${args[@]}"}
