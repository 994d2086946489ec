#!/usr/bin/env bash
# Quick start #2: all tests (unit + integration against real etcd with auth and Redis). Extra
# arguments go to jest, e.g. `scripts/test.sh --selectProjects unit` or a test path.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/stack/ensure-packages.sh
# chromium, kubectl, docker-compose, prometheus: driven by the dashboard, deployment-manifest and
# Prometheus service-discovery tests.
bash tools/stack/ensure-test-tools.sh
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
# --runInBand: integration tests share one etcd and compare its server-side counters; parallel test
# files would add each other's calls.
# No --forceExit: the suites close what they open and jest exits on its own. A leak cannot hang CI:
# each project's globalTeardown arms test/support/exit-guard.ts, which names what is still open and
# exits 1 when jest has not exited 15 s after the last file.
exec npx jest --runInBand "$@"
