#!/usr/bin/env bash
# Creates .venv and installs the project with its dev tools. Re-runs are quick: the
# install is skipped while pyproject.toml is unchanged since the last success.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
# The dashboard's charting library comes from the npm registry into a git-ignored
# node_modules/ that the API serves as static files (no build step).
dash=src/fastinsight/dashboard
if [[ ! -f "$dash/node_modules/chart.js/package.json" ]]; then
  command -v npm >/dev/null || { echo "bootstrap: npm is needed for the dashboard's chart library" >&2; exit 2; }
  (cd "$dash" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
# The browser client (clients/js) is compiled by TypeScript, its one devDependency,
# installed the same way into clients/js/node_modules/ (git-ignored).
js=clients/js
if [[ ! -f "$js/node_modules/typescript/package.json" ]]; then
  command -v npm >/dev/null || { echo "bootstrap: npm is needed to build the browser client" >&2; exit 2; }
  (cd "$js" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

stamp=.venv/.fastinsight-installed
if [[ -f "$stamp" && "$stamp" -nt pyproject.toml ]]; then
  exit 0
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
touch "$stamp"
echo "bootstrap: .venv ready"
