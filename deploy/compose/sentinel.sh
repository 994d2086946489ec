#!/bin/sh
# One Sentinel of deploy/compose/redis-sentinel.yml. Sentinel rewrites its config file as it learns
# (replicas, peers, the current primary), so it is written here, into the container's own filesystem.
set -eu
redis_password=$(cat /run/secrets/redis_password)
sentinel_password=$(cat /run/secrets/redis_sentinel_password)
cat >/tmp/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip ${SENTINEL_HOSTNAME}
requirepass ${sentinel_password}
sentinel sentinel-pass ${sentinel_password}
sentinel monitor registry redis 6379 2
sentinel auth-pass registry ${redis_password}
sentinel down-after-milliseconds registry 5000
sentinel failover-timeout registry 30000
sentinel parallel-syncs registry 1
CONF
exec redis-sentinel /tmp/sentinel.conf
