#!/usr/bin/env bash
# Tools some integration tests drive beyond etcd/Redis (those are ensure-packages.sh's job):
#   chromium           test/ui-dashboard drives /usr/bin/chromium through playwright-core
#   kubernetes-client  kubectl: test/deploy-manifests renders deploy/k8s with `kubectl kustomize`
#   docker-compose     test/deploy-manifests and .ci/run validate docker-compose.yml (`config -q`;
#                      validation only, no Docker engine needed)
#   prometheus         test/door-prometheus starts /usr/bin/prometheus itself (eureka_sd and http_sd
#                      pointed at the gateway); the package's own service must not keep running
# Installs (Debian 12, apt-get) only what is missing; silent when everything is there.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

# Prometheus's own service would sit on :9090 (see apt-install.sh): stopped by its pid file.
APT_SERVICE_PIDFILES="/run/prometheus/prometheus.pid /var/run/prometheus/prometheus.pid /run/prometheus.pid" \
  bash "$(dirname "$0")/apt-install.sh" ensure-test-tools "${missing[@]}"

for bin in /usr/bin/chromium /usr/bin/prometheus; do
  [ -x "$bin" ] || { echo "ensure-test-tools: $bin still missing after install" >&2; exit 1; }
done
for bin in kubectl docker-compose; do
  command -v "$bin" >/dev/null 2>&1 || { echo "ensure-test-tools: $bin still missing after install" >&2; exit 1; }
done
