#!/usr/bin/env bash
# Make sure etcd, etcdctl, redis-server and redis-sentinel exist (Debian 12 packages etcd-server,
# etcd-client, redis-server, redis-sentinel; Sentinel runs the Redis Sentinel topology of the tests and
# of `REDIS_MODE=sentinel npm start`). Does nothing when they are already installed. The stack runs them as plain child
# processes, so the packages' own system services must NOT start: a service etcd/Redis would sit
# on 2379/6379, outlive us, and (without systemd) may even fail the install.
set -euo pipefail

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

# The packages' own services must not keep running (see apt-install.sh): stopped by their pid files.
APT_SERVICE_PIDFILES="/run/redis/redis-server.pid /var/run/redis/redis-server.pid /run/sentinel/redis-sentinel.pid /var/run/sentinel/redis-sentinel.pid /run/etcd.pid /run/etcd/etcd.pid" \
  bash "$(dirname "$0")/apt-install.sh" ensure-packages "${missing[@]}"

for bin in etcd etcdctl redis-server redis-sentinel; do
  command -v "$bin" >/dev/null 2>&1 || { echo "ensure-packages: $bin still missing after install" >&2; exit 1; }
done
echo "ensure-packages: $(etcd --version | head -1), $(redis-server --version | cut -d' ' -f1-3)" >&2
