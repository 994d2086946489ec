#!/usr/bin/env bash
# Tools some integration tests drive beyond etcd/Redis (those are ensure-packages.sh's job):
#   chromium           test/ui-dashboard drives /usr/bin/chromium through playwright-core
#   kubernetes-client  kubectl: test/deploy-manifests renders deploy/k8s with `kubectl kustomize`
#   docker-compose     test/deploy-manifests and .ci/run validate docker-compose.yml (`config -q`;
#                      validation only, no Docker engine needed)
# Installs (Debian 12, apt-get) only what is missing; silent when everything is there.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-tools: missing ${missing[*]} and no apt-get here; install them yourself" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "ensure-test-tools: missing ${missing[*]}; run this script as root (or install sudo)" >&2
    exit 1
  fi
fi

echo "ensure-test-tools: installing ${missing[*]}" >&2
# --no-install-recommends keeps chromium's install small; the Lock::Timeout waits for another apt
# run (e.g. ensure-packages.sh in a parallel job) instead of failing at once.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${APT[@]}" update && "${APT[@]}" install -y --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-test-tools: apt-get failed for ${missing[*]}" >&2
  exit 1
fi

[ -x /usr/bin/chromium ] || { echo "ensure-test-tools: /usr/bin/chromium still missing after install" >&2; exit 1; }
for bin in kubectl docker-compose; do
  command -v "$bin" >/dev/null 2>&1 || { echo "ensure-test-tools: $bin still missing after install" >&2; exit 1; }
done
