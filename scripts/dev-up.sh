#!/usr/bin/env bash
# Quick start #1 (`npm start`): from a fresh Debian 12 machine to a running gateway in front of a
# local auth-enabled etcd and Redis (data under .local/dev/, kept across runs). Ctrl-C stops it all.
#   scripts/dev-up.sh [--stack-only]    (--stack-only: etcd + Redis, no gateway, no build)
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/stack/ensure-packages.sh
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
if [[ " $* " != *" --stack-only "* ]]; then
  npm run build
fi
# exec + the local ts-node binary (not npx): npx puts npm and `sh -c` between us and the Node process,
# and a SIGTERM sent to npm is not forwarded, leaving the stack orphaned. This way signals (Ctrl-C,
# SIGTERM from a supervisor) reach the process that owns the stack.
exec node_modules/.bin/ts-node --transpile-only -r tsconfig-paths/register tools/stack/dev-up.ts "$@"
