#!/usr/bin/env bash
# System packages the test suite needs (Debian): headless Chromium for the dashboard
# browser tests, docker-compose to validate compose.yml without an engine, and haproxy
# to check the load balancer's configuration (deploy/).
# Installs only what is missing; needs root (as on CI and the dev machines).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
if [[ ${#need[@]} -eq 0 ]]; then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install_system_deps: missing ${need[*]}; install them with apt-get (needs root)" >&2
  exit 0
fi
echo "install_system_deps: installing ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
