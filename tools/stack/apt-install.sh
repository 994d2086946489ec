#!/usr/bin/env bash
# apt-install.sh LABEL PACKAGE...: installs Debian packages with apt-get, as root or through sudo,
# without starting the packages' own services, waiting for another apt run's lock instead of failing.
# Shared by ensure-packages.sh (etcd, Redis) and ensure-test-tools.sh (chromium, kubectl, docker-compose, prometheus).
set -euo pipefail
label=$1
shift
[ $# -gt 0 ] || exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "$label: missing $* and no apt-get here; install them yourself" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "$label: missing $*; run this script as root (or install sudo)" >&2
    exit 1
  fi
fi
echo "$label: installing $*" >&2

# policy-rc.d exit code 101 = "action forbidden": invoke-rc.d (used by the packages' maintainer
# scripts when there is no systemd) then skips starting the services. Only add ours if none exists
# (container images often ship one) and remove it afterwards.
POLICY=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  own_policy=1
fi
log=$(mktemp)
cleanup() {
  rm -f "$log"
  if [ "$own_policy" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap cleanup EXIT

# --no-install-recommends keeps installs small (chromium's above all).
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
if ! { "${APT[@]}" update && "${APT[@]}" install -y --no-install-recommends "$@"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "$label: apt-get failed for $*" >&2
  exit 1
fi

# Belt and braces: a service the install started anyway (a policy-rc.d we did not write allows it)
# would sit on its default port and outlive us. Stop exactly the daemons of the packages installed,
# through their pid files (APT_SERVICE_PIDFILES, space-separated), never by name: a developer's own
# etcd/Redis/Prometheus stays.
for pidfile in ${APT_SERVICE_PIDFILES:-}; do
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      echo "$label: stopping service process $pid ($pidfile) started by the package install" >&2
      "${SUDO[@]}" kill "$pid" 2>/dev/null || true
    fi
  fi
done
