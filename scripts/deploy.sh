#!/usr/bin/env bash
# Zero-downtime restart of the API on this host (blue/green behind the local proxy).
set -euo pipefail
# shellcheck source=scripts/_ops_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_ops_common.sh"

usage() {
  cat <<EOF
usage: $OPS_NAME [run] [--ready-timeout SECONDS] [--backend-cmd CMD]
       $OPS_NAME status | stop

run (default): start the API on the idle port of FASTINSIGHT_DEPLOY_BACKEND_PORTS
  (8001/8002), wait for its /health/ready, switch the proxy listening on
  FASTINSIGHT_HOST:FASTINSIGHT_PORT (started by the first deploy) to it, wait for
  the old one's in-flight requests, stop the old one. If the new API never becomes
  ready it is stopped and the old one keeps serving (exit 6).
status: print the active backend and the proxy's view (exit 1 if either is down).
stop:   stop the API and the proxy.

  --backend-cmd CMD  API command line; {python}, {port}, {drain} are substituted
                     (default: uvicorn fastinsight.api.asgi:app)

Exit codes: 0 ok, 1 failed, 2 usage, 6 new version not ready, rolled back.
EOF
}

action=run
if [[ $# -gt 0 && "$1" != -* ]]; then
  action="$1"; shift
fi
case "$action" in
  run|status|stop) ;;
  *) die_usage "unknown action '$action'" ;;
esac

args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --ready-timeout)
      [[ "$action" == run ]] || die_usage "$1 only applies to run"
      need_number "$@"; args+=(--ready-timeout "$2"); shift 2 ;;
    --backend-cmd)
      [[ "$action" == run ]] || die_usage "$1 only applies to run"
      need_value "$@"; args+=(--backend-cmd "$2"); shift 2 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done

exec "$(fastinsight_bin)" deploy "$action" ${args[@]+"${args[@]}"}
