#!/usr/bin/env bash
# The test command: Node 24, services, a clean install from the lockfile, then the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node.sh
bash scripts/ensure-services.sh
npm ci --no-audit --no-fund
npm test
