#!/usr/bin/env bash
# Install and start: a foreman on embedded SQLite (./crowdcompute.db) at http://localhost:8000,
# two local workers, an example map job with a progress bar; then it keeps serving until Ctrl-C.
# Its options are `crowdcompute demo`'s: bash scripts/start.sh --help lists them
# (--port, --database, --workers, --ranges, --exit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-node.sh
source scripts/node-path.sh
help=0
for arg in "$@"; do case "$arg" in -h|--help) help=1 ;; esac; done
# --help needs the dependencies, not their freshest install.
if [ ! -d node_modules ] || { [ "$help" = 0 ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then npm ci --no-audit --no-fund; fi
exec node --no-node-snapshot bin/crowdcompute.js demo "$@"
