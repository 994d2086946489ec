#!/usr/bin/env bash
# Make sure etcd, etcdctl and redis-server exist (Debian 12 packages etcd-server, etcd-client,
# redis-server). Does nothing when they are already installed. The stack runs them as plain child
# processes, so the packages' own system services must NOT start: a service etcd/Redis would sit
# on 2379/6379, outlive us, and (without systemd) may even fail the install.
set -euo pipefail

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-packages: missing ${missing[*]} and no apt-get here; install etcd 3.4+ and redis-server 7 yourself" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "ensure-packages: missing ${missing[*]}; run this script as root (or install sudo)" >&2
    exit 1
  fi
fi

echo "ensure-packages: installing ${missing[*]}" >&2

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
cleanup() {
  if [ "$own_policy" = 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"

# Belt and braces: if a service got started anyway (e.g. a policy-rc.d we did not write allows it),
# stop exactly those daemons via their pid files. Never by name: a developer's own etcd/Redis stays.
for pidfile in /run/redis/redis-server.pid /var/run/redis/redis-server.pid /run/etcd.pid /run/etcd/etcd.pid; do
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      echo "ensure-packages: stopping service process $pid ($pidfile) started by the package install" >&2
      "${SUDO[@]}" kill "$pid" || true
    fi
  fi
done

for bin in etcd etcdctl redis-server; do
  command -v "$bin" >/dev/null 2>&1 || { echo "ensure-packages: $bin still missing after install" >&2; exit 1; }
done
echo "ensure-packages: $(etcd --version | head -1), $(redis-server --version | cut -d' ' -f1-3)" >&2
