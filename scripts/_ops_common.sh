# Sourced by the ops scripts (backup, restore, monitor, deploy, cleanup_logs).
# Finds the fastinsight CLI and checks arguments; the scripts themselves stay thin.
# shellcheck shell=bash

OPS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OPS_NAME="$(basename "$0")"

# Exit codes shared with the CLI (see docs/operations.md).
readonly EXIT_USAGE=2

die_usage() {
  echo "$OPS_NAME: $*" >&2
  echo "Try '$OPS_NAME --help'." >&2
  exit "$EXIT_USAGE"
}

# The CLI: $FASTINSIGHT_BIN, else the project's .venv, else whatever is on PATH.
fastinsight_bin() {
  if [[ -n "${FASTINSIGHT_BIN:-}" ]]; then
    [[ -x "$FASTINSIGHT_BIN" ]] || { echo "$OPS_NAME: FASTINSIGHT_BIN=$FASTINSIGHT_BIN is not executable" >&2; exit 1; }
    echo "$FASTINSIGHT_BIN"
  elif [[ -x "$OPS_ROOT/.venv/bin/fastinsight" ]]; then
    echo "$OPS_ROOT/.venv/bin/fastinsight"
  elif command -v fastinsight >/dev/null 2>&1; then
    command -v fastinsight
  else
    echo "$OPS_NAME: the fastinsight CLI was not found (run scripts/bootstrap.sh or set FASTINSIGHT_BIN)" >&2
    exit 1
  fi
}

# need_value FLAG "$@": the flag must be followed by a non-empty value.
need_value() {
  [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die_usage "$1 needs a value"
}

need_int() {
  need_value "$@"
  [[ "$2" =~ ^[1-9][0-9]*$ ]] || die_usage "$1 must be a positive integer, got '$2'"
}

need_number() {
  need_value "$@"
  [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "$1 must be a non-negative number, got '$2'"
}
