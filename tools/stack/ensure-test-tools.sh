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

bash "$(dirname "$0")/apt-install.sh" ensure-test-tools "${missing[@]}"

[ -x /usr/bin/chromium ] || { echo "ensure-test-tools: /usr/bin/chromium still missing after install" >&2; exit 1; }
for bin in kubectl docker-compose; do
  command -v "$bin" >/dev/null 2>&1 || { echo "ensure-test-tools: $bin still missing after install" >&2; exit 1; }
done
