#!/usr/bin/env bash
# Generates the secret files docker-compose.yml mounts (compose `secrets:`), once: existing files are
# kept, so re-running never changes a password etcd already has. Files land in deploy/compose/secrets/
# (git-ignored): the directory is 0700 so other users of the host cannot read them; the files
# themselves are 0444 because compose bind-mounts them as they are and the gateway runs as uid 1000.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
mkdir -p "$dir"
chmod 700 "$dir"

# 24 random bytes -> 32 URL-safe characters: no ':' (etcdctl's user:password syntax), no quoting trouble.
random() { head -c 24 /dev/urandom | base64 | tr '+/' '-_'; }

write() { # name, content
  local file="$dir/$1"
  if [ -e "$file" ]; then
    echo "make-secrets: keeping $file"
    return
  fi
  (umask 077 && printf '%s\n' "$2" >"$file")
  chmod 444 "$file"
  echo "make-secrets: wrote $file"
}

write etcd_root_password "$(random)"
write etcd_gateway_password "$(random)"
# Used by the Sentinel example only (deploy/compose/redis-sentinel.yml): Redis's and the Sentinels' own.
write redis_password "$(random)"
write redis_sentinel_password "$(random)"
# The gateway's API tokens (README "Security"): one per role; replace with your own as needed.
write api_tokens.json "$(cat <<JSON
{
  "tokens": [
    { "name": "ops-admin", "role": "admin", "token": "$(random)" },
    { "name": "dashboards", "role": "reader", "token": "$(random)" },
    { "name": "node-agents", "role": "agent", "services": ["*"], "token": "$(random)" }
  ]
}
JSON
)"
