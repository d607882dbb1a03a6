#!/usr/bin/env bash
# The test command: Node 24, services, Chromium, a clean install from the lockfile, then the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node.sh
bash scripts/ensure-services.sh
bash scripts/ensure-chromium.sh
npm ci --no-audit --no-fund
npm test
