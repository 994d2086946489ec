#!/usr/bin/env bash
# Quick start #2: all tests (unit + integration against real etcd with auth and Redis). Extra
# arguments go to jest, e.g. `scripts/test.sh --selectProjects unit` or a test path.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/stack/ensure-packages.sh
# chromium, kubectl, docker-compose: driven by the dashboard and deployment-manifest tests.
bash tools/stack/ensure-test-tools.sh
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
# --runInBand: integration tests share one etcd and compare its server-side counters; parallel test
# files would add each other's calls.
# --forceExit: a safety net so a leaked handle can never hang CI for its 90 minutes; the suites
# close what they open (run one file with --detectOpenHandles to find a leak).
exec npx jest --runInBand --forceExit "$@"
