#!/bin/sh
# One-shot job of docker-compose.yml (service etcd-bootstrap): the same bootstrap the tests run
# (tools/stack/etcd.ts): a root user, a role with readwrite on the registry prefix only, the gateway
# user with that role, then `auth enable`. Passwords come from compose secrets and reach etcdctl on
# stdin (--interactive=false) or in its environment, never in argv where `ps` would show them.
# Re-runnable: "already exists" from an interrupted earlier run is accepted, and once auth is on the
# job only checks that the root password still works.
set -eu
: "${ETCD_PREFIX:=/registry/}"
: "${GATEWAY_USER:=registry-gateway}"
ROLE=registry-gateway
secrets=${SECRETS_DIR:-/run/secrets}
root_password=$(cat "$secrets/etcd_root_password")
gateway_password=$(cat "$secrets/etcd_gateway_password")
export ETCDCTL_API=3

# Wait for a quorum: `user list` is a raft request. With auth already on it fails fast with
# "user name is empty", which also means the cluster answers.
attempts=0
until out=$(etcdctl --dial-timeout=2s --command-timeout=5s user list 2>&1); do
  case $out in *"user name is empty"*)
    if ! ETCDCTL_USER="root:$root_password" etcdctl user get root >/dev/null 2>&1; then
      echo "etcd-bootstrap: auth is on but the root password from the secret does not work" >&2
      exit 1
    fi
    echo "etcd-bootstrap: auth is already enabled and the root password works"
    exit 0 ;;
  esac
  attempts=$((attempts + 1))
  if [ "$attempts" -ge 120 ]; then echo "etcd-bootstrap: no etcd quorum after 120 s: $out" >&2; exit 1; fi
  sleep 1
done

step() {
  if ! out=$(etcdctl --command-timeout=10s "$@" 2>&1); then
    case $out in
      *"already exists"* | *"already granted"*) ;;
      *) echo "etcd-bootstrap: etcdctl $1 $2 failed: $out" >&2; exit 1 ;;
    esac
  fi
}

printf '%s\n' "$root_password" | step user add root --interactive=false
step role add root
step user grant-role root root
step role add "$ROLE"
step role grant-permission "$ROLE" readwrite "$ETCD_PREFIX" --prefix=true
printf '%s\n' "$gateway_password" | step user add "$GATEWAY_USER" --interactive=false
step user grant-role "$GATEWAY_USER" "$ROLE"
step auth enable
echo "etcd-bootstrap: users root and $GATEWAY_USER created, role $ROLE may read and write $ETCD_PREFIX only, auth enabled"
