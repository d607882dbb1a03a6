#!/usr/bin/env bash
# The test command: Node 24 (the checkout's own in .node/ when the machine's is older),
# services, Chromium, Debian's Python packages and kubectl, a clean install from the lockfile,
# then both suites (TypeScript, then the Python SDK's), and one closing line that counts every test.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node.sh || exit 1
source scripts/node-path.sh
bash scripts/ensure-services.sh
bash scripts/ensure-chromium.sh
bash scripts/ensure-python.sh
bash scripts/ensure-kubectl.sh
npm ci --no-audit --no-fund || exit 1
reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT
npm test 2>&1 | tee "$reports/node.log"
npm run -s test:python -- --junitxml="$reports/pytest.xml" 2>&1
node scripts/test-summary.ts "$reports/node.log" "$reports/pytest.xml"
