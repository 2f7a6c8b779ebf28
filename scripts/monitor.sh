#!/usr/bin/env bash
# Sample CPU, memory, disk, load and the API; append JSON lines; --check fails on thresholds.
set -euo pipefail
# shellcheck source=scripts/_ops_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_ops_common.sh"

usage() {
  cat <<EOF
usage: $OPS_NAME [--check] [--samples N] [--interval SECONDS] [--url URL | --no-api]
                 [--log FILE] [--disk-path DIR] [--max-cpu-pct P] [--max-mem-pct P]
                 [--max-disk-pct P] [--max-load-per-cpu L]

Takes N samples (CPU from vmstat when installed, else /proc/stat; memory from
/proc/meminfo; disk usage; load average; GET URL/health/ready and URL/metrics) and
appends one JSON line per sample to the log (default var/log/monitor.jsonl).
Crossed thresholds print a WARNING line on stderr.

  --check   exit 5 if any threshold was crossed (for cron / the job runner)

Thresholds default to FASTINSIGHT_MONITOR_MAX_* (cpu 95, mem 90, disk 90, load 4/cpu);
the API URL to FASTINSIGHT_MONITOR_URL (http://127.0.0.1:8000).
Exit codes: 0 ok, 1 failed, 2 usage, 5 threshold crossed (with --check).
EOF
}

args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --check) args+=(--check); shift ;;
    --no-api) args+=(--no-api); shift ;;
    --samples) need_int "$@"; args+=(--samples "$2"); shift 2 ;;
    --interval) need_number "$@"; args+=(--interval "$2"); shift 2 ;;
    --url)
      need_value "$@"
      [[ "$2" =~ ^https?:// ]] || die_usage "--url must start with http:// or https://"
      args+=(--url "$2"); shift 2 ;;
    --log) need_value "$@"; args+=(--log "$2"); shift 2 ;;
    --disk-path) need_value "$@"; args+=(--disk-path "$2"); shift 2 ;;
    --max-cpu-pct|--max-mem-pct|--max-disk-pct|--max-load-per-cpu)
      need_number "$@"; args+=("$1" "$2"); shift 2 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

exec "$(fastinsight_bin)" monitor ${args[@]+"${args[@]}"}
