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

bash "$(dirname "$0")/apt-install.sh" ensure-packages "${missing[@]}"

# Belt and braces: if a service got started anyway (e.g. a policy-rc.d we did not write allows it),
# stop exactly those daemons via their pid files. Never by name: a developer's own etcd/Redis stays.
for pidfile in /run/redis/redis-server.pid /var/run/redis/redis-server.pid /run/sentinel/redis-sentinel.pid /var/run/sentinel/redis-sentinel.pid /run/etcd.pid /run/etcd/etcd.pid; do
  if [ -s "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      echo "ensure-packages: stopping service process $pid ($pidfile) started by the package install" >&2
      kill "$pid" 2>/dev/null || sudo kill "$pid" 2>/dev/null || true
    fi
  fi
done

for bin in etcd etcdctl redis-server redis-sentinel; do
  command -v "$bin" >/dev/null 2>&1 || { echo "ensure-packages: $bin still missing after install" >&2; exit 1; }
done
echo "ensure-packages: $(etcd --version | head -1), $(redis-server --version | cut -d' ' -f1-3)" >&2
