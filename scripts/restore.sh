#!/usr/bin/env bash
# Restore a backup archive (verified first) into the same or another database.
set -euo pipefail
# shellcheck source=scripts/_ops_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_ops_common.sh"

usage() {
  cat <<EOF
usage: $OPS_NAME ARCHIVE|latest [--target-db NAME] [--drop] [--dry-run] [--recount] [--yes]

Checks every file of ARCHIVE against its sha256 manifest (nothing is written if
one differs), loads it into a staging database with its indexes and checks that,
and only then writes the target. A failure leaves the target as it was.

  ARCHIVE          a fastinsight-*.tar.gz file, or 'latest' (newest in the backup dir)
  --target-db NAME restore into NAME instead of the archived database
  --drop           replace the target's collections, drop those the archive lacks
                   (required if it holds data)
  --dry-run        do the whole staging load and its checks; the target is not written
  --recount        count every collection on the server afterwards (slow on FerretDB)
  --yes            do not ask for confirmation of --drop on a terminal

Exit codes: 0 ok, 1 failed, 2 usage, 3 archive missing/corrupt/not matching its
manifest, 4 target database not empty (use --drop).
EOF
}

archive=""
args=()
drop=0
yes=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --target-db)
      need_value "$@"
      [[ "$2" =~ ^[A-Za-z0-9_-]{1,63}$ ]] || die_usage "--target-db must match [A-Za-z0-9_-]{1,63}"
      args+=(--target-db "$2"); shift 2 ;;
    --drop) drop=1; args+=(--drop); shift ;;
    --dry-run) args+=(--dry-run); shift ;;
    --recount) args+=(--recount); shift ;;
    --yes|-y) yes=1; shift ;;
    -*) die_usage "unknown option '$1'" ;;
    *)
      [[ -z "$archive" ]] || die_usage "only one ARCHIVE may be given"
      archive="$1"; shift ;;
  esac
done
[[ -n "$archive" ]] || die_usage "ARCHIVE is required"
if [[ "$archive" != latest && ! -f "$archive" ]]; then
  echo "$OPS_NAME: archive '$archive' does not exist" >&2
  exit 3
fi
if [[ $drop -eq 1 && $yes -eq 0 && -t 0 ]]; then
  read -r -p "Drop the target database and restore '$archive'? [y/N] " answer
  [[ "$answer" =~ ^[Yy]$ ]] || { echo "aborted" >&2; exit 1; }
fi

exec "$(fastinsight_bin)" restore "$archive" ${args[@]+"${args[@]}"}
