#!/usr/bin/env bash
# The test command: Node 24 (the checkout's own in .node/ when the machine's is older),
# services, Chromium, Debian's Python packages and kubectl, a clean install from the lockfile,
# then both suites (TypeScript and the Python SDK's, side by side), and one closing line that counts every test.
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
# The Python suite runs beside the TypeScript one: both spend much of their time waiting on the
# foremen and workers they start, and the TypeScript suite alone keeps two cores about 70% busy.
# Its output follows the TypeScript suite's.
npm run -s test:python -- --junitxml="$reports/pytest.xml" > "$reports/python.log" 2>&1 &
python_suite=$!
npm test 2>&1 | tee "$reports/node.log"
wait "$python_suite"
cat "$reports/python.log"
node scripts/test-summary.ts "$reports/node.log" "$reports/pytest.xml"
